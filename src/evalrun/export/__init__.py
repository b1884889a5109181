"""`evalrun export RUN_DIR --format NAME`: a finished run in a format other tools read.

`FORMATS` maps a format's name to its writer, which takes the run folder and the output folder (None: its
default inside the run folder) and returns the files it wrote. Writers read only the run folder
(summary.json, results.parquet, readings.parquet), never the response store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import EvalrunError
from . import inspect

Writer = Callable[[Path, Path | None], list[Path]]

FORMATS: dict[str, Writer] = {"inspect": inspect.write}
# formats asked for but not written yet, and why (issue 26)
NOT_YET = {
    "eee": "Every Eval Ever's schemas are public (instance_level_eval.schema.json 0.2.1 in evaleval/every_eval_ever) "
           "but not written yet: each instance needs a true/false is_correct, which a run without gold labels "
           "has not, and an aggregate eval.schema.json record beside it; --format inspect writes every answer",
}


def export(run_dir: Path, fmt: str, out: Path | None = None) -> list[Path]:
    """Write the run in `run_dir` in format `fmt`; the files written. An unknown format or a folder that is
    not a run's raises one EvalrunError."""
    if fmt in NOT_YET:
        raise EvalrunError(f"format {fmt!r}: {NOT_YET[fmt]}")
    writer = FORMATS.get(fmt)
    if writer is None:
        raise EvalrunError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    if not run_dir.is_dir():
        raise EvalrunError(f"{run_dir}: no such folder")
    return writer(run_dir, out)

"""The Python API: run a spec, re-render a report, check a spec. The command line is a thin layer over it.

    import evalrun
    run = evalrun.run("evals/gender.yaml", models=["evalrun/smollm2"], samples=3)
    run.dir, run.summary["statistics"], run.results  # folder, summary.json, results as a polars DataFrame

Errors a user can fix raise `EvalrunError` (see errors.py); Ctrl-C (or SIGTERM under the CLI)
raises `Interrupted`, after which every answer received is in the store and the same call resumes.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EvalrunError, Interrupted, Problem, ProblemsError

if TYPE_CHECKING:
    import polars as pl

    from .spec import Spec


@dataclass(frozen=True)
class Run:
    """A finished run: its folder (report.md, summary.json, results.parquet) and its summary."""

    dir: Path
    summary: dict[str, Any]

    @property
    def report_path(self) -> Path:
        return self.dir / "report.md"

    @property
    def results(self) -> pl.DataFrame:
        """One row per job (see results.py for the columns), read from results.parquet."""
        import polars as pl

        from .report import RESULTS

        return pl.read_parquet(self.dir / RESULTS)

    @property
    def failed_share(self) -> float:
        totals = self.summary["totals"]
        return totals["failed"] / totals["jobs"] if totals["jobs"] else 0.0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def check(path: Path | str) -> list[Problem]:
    """Every problem of one spec and its dataset (what `validate` reports and `run` refuses), in reading order."""
    from .dataset import load_dataset
    from .errors import in_order
    from .spec import check_columns, load_spec

    path = Path(path)
    try:
        spec = load_spec(path)
    except ProblemsError as exc:
        return in_order(exc.problems, str(path))
    try:
        dataset = load_dataset(spec)
    except ProblemsError as exc:
        return in_order(spec.warnings + exc.problems, str(path))
    return in_order(spec.warnings + check_columns(spec, dataset.columns), str(path))


def _versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("evalrun", "litellm", "llama-cpp-python", "polars", "statsmodels", "scipy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def _configure(spec: Spec, models: Sequence[str] | None, samples: int | None, concurrency: int | None,
               rpm: float | None, tpm: float | None) -> Spec:
    if models and len(set(models)) < len(models):
        raise EvalrunError("--model: the same model is given twice")
    if any(v is not None and v <= 0 for v in (concurrency, rpm, tpm)):
        raise EvalrunError("--concurrency, --rpm and --tpm must be more than 0")
    spec = spec.with_overrides(models=list(models) if models else None, samples=samples)
    if concurrency or rpm or tpm:
        spec.models = [replace(m, concurrency=concurrency or m.concurrency, rpm=rpm or m.rpm, tpm=tpm or m.tpm)
                       for m in spec.models]
    return spec


def run(spec_path: Path | str, *, models: Sequence[str] | None = None, samples: int | None = None,
        limit: int | None = None, out: Path | str = "reports", fresh: bool = False, max_cost: float | None = None,
        retries: int = 5, retry_delay: float = 1.0, concurrency: int | None = None, rpm: float | None = None,
        tpm: float | None = None, warn: Callable[[str], None] = _stderr) -> Run:
    """Run a spec: ask every job not already in the store, label the answers, write the report.

    `models` replaces the spec's models (litellm model strings); `samples` and `limit` (first N
    items) override the spec; `concurrency`, `rpm` and `tpm` override every model's limits;
    `max_cost` (USD) stops sending new requests once spent. Warnings go to `warn` (stderr).
    """
    from .dataset import load_dataset
    from .design import Design
    from .spec import DEFAULT_SEED, check_columns, load_spec

    if retries < 0 or retry_delay < 0:
        raise EvalrunError("--retries and --retry-delay must be 0 or more")
    spec_path = Path(spec_path)
    spec = _configure(load_spec(spec_path), models, samples, concurrency, rpm, tpm)
    for warning in spec.warnings:
        warn(warning.render())
    dataset = load_dataset(spec, limit=limit)
    problems = check_columns(spec, dataset.columns)
    for warning in (p for p in problems if p.severity == "warning"):
        warn(warning.render())
    if any(p.severity == "error" for p in problems):
        raise ProblemsError([p for p in problems if p.severity == "error"])
    design = Design(spec, dataset)
    design.check_renders()
    for model in spec.models:
        if model.api_key_env and not os.environ.get(model.api_key_env):
            warn(f"evalrun: warning: model '{model.name}': {model.api_key_env} is not set; "
                 "its jobs will be recorded as failed")

    from .progress import Display
    from .providers import prepare, priced
    from .report import RESULTS, write_report
    from .results import Results
    from .runner import RetryPolicy, RunOptions, run_jobs
    from .store import Store, home

    prepare(spec.models)
    if max_cost is not None:
        for model in spec.models:
            if not priced(model):
                warn(f"evalrun: warning: model '{model.name}': litellm knows no price for {model.model}, so "
                     "--max-cost cannot stop its requests (give it a `price` in the spec)")
    streams = {m.name: design.expand(only=m) for m in spec.models}
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    out = Path(out)
    with Results(spec, dataset, scratch_parent=home() / "scratch") as results:
        store = Store()
        display = Display({m.name: design.count(m) for m in spec.models}, on_outcome=results.add)
        t0 = time.perf_counter()
        try:
            options = RunOptions(fresh=fresh, max_cost=max_cost,
                                 retry=RetryPolicy(attempts=retries + 1, base=retry_delay))
            asyncio.run(run_jobs(streams, spec.models, store, options, display))
        except KeyboardInterrupt:
            display.close()
            raise Interrupted(sum(t.done for t in display.tallies.values()), design.count(), store.path) from None
        finally:
            store.close()
        display.close()
        duration = time.perf_counter() - t0

        base_id = run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + spec.sha256[:6]
        run_dir = out / spec.name / run_id
        suffix = 1
        while run_dir.exists():  # a rerun within the same second must not overwrite the earlier report
            suffix += 1
            run_id = f"{base_id}-{suffix}"
            run_dir = out / spec.name / run_id
        run_dir.mkdir(parents=True)
        results.write_parquet(run_dir / RESULTS)
    meta: dict[str, Any] = {
        "name": spec.name, "description": spec.description, "run_id": run_id,
        "spec_path": str(spec_path), "spec_sha256": spec.sha256,
        "dataset_source": dataset.source, "dataset_sha256": dataset.sha256, "items": len(dataset.items),
        "labels": spec.labels, "variants": list(spec.variants), "compare": [list(p) for p in spec.compare],
        "has_gold": dataset.gold_column is not None,
        "models": [{"name": m.name, "model": m.model, "api_base": m.api_base} for m in spec.models],
        "samples": spec.samples, "params": spec.params, "seed": spec.params.get("seed", DEFAULT_SEED),
        "started": started, "duration_s": duration, "versions": _versions(),
    }
    if design.axes:  # absent for a design without optional axes, so such a summary reads as release 0.1's
        meta["design"] = design.describe()
    return Run(run_dir, write_report(run_dir, meta))


def report(run_dir: Path | str) -> Path:
    """Re-render report.md and summary.json from a run folder's results.parquet, asking no model."""
    from .report import rerender

    return rerender(Path(run_dir))

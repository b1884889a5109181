"""How long `evalrun run` takes to give up on a model nothing answers for, next to one that answers.

Issue 14 (release 0.1 spent 203 s retrying a dead model's 96 jobs) moved this figure out of
tests/test_hardening_run.py, which now checks what can be observed (the jobs not sent) and no
wall-clock bound. Here a spec of `--items` items x 2 variants goes to two models, one at a closed
port on 127.0.0.1 and one at tests/loopback_server.py, with the default retries; each line is the
wall time of one whole `evalrun run` process and how many of the dead model's jobs it recorded as
failed (Unreachable):

    .venv/bin/python bench/unreachable.py --items 48 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from throughput import serving  # bench/throughput.py: run as a script, bench/ is on sys.path

SPEC = """\
name: unreachable
dataset: {{path: items.jsonl}}
labels: [a, b]
variants:
  one: {{prompt: "ONE <{{{{ id }}}}>", extract: {{type: choice, choices: {{a: [ok], b: [bad]}}}}}}
  two: {{prompt: "TWO <{{{{ id }}}}>", extract: {{type: choice, choices: {{a: [ok], b: [bad]}}}}}}
models:
  - {{model: openai/loop, name: dead, api_base: '{dead}', api_key_env: BENCH_KEY, timeout: 10}}
  - {{model: openai/loop, name: live, api_base: '{live}', api_key_env: BENCH_KEY, timeout: 10}}
"""


def closed_port() -> int:
    """A port nothing listens on: bound, read, closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def once(folder: Path, live: str, items: int) -> tuple[float, int]:
    """One whole run in a fresh home: its wall time and the dead model's jobs recorded as Unreachable."""
    (folder / "items.jsonl").write_text("".join(json.dumps({"id": f"i{n:02d}"}) + "\n" for n in range(items)))
    spec = folder / "spec.yaml"
    spec.write_text(SPEC.format(dead=f"http://127.0.0.1:{closed_port()}/v1", live=live))
    env = {**os.environ, "EVALRUN_HOME": str(folder / "home"), "BENCH_KEY": "not-a-key",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "evalrun", "run", str(spec), "--out", str(folder / "out")],
                          env=env, capture_output=True, text=True)
    if not done.stdout.strip():
        raise SystemExit(f"the run wrote no report:\n{done.stderr}")
    wall = time.perf_counter() - start
    results = pl.read_parquet(Path(done.stdout.strip().splitlines()[-1]).parent / "results.parquet")
    return wall, results.filter((pl.col("model") == "dead") & (pl.col("error_class") == "Unreachable")).height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with serving(latency=0.0) as live:
        for n in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="evalrun-unreachable-") as folder:
                wall, unreachable = once(Path(folder), live, args.items)
            print(f"run {n + 1}: {wall:.1f} s whole process, {unreachable} of the dead model's {2 * args.items} jobs "
                  "recorded as Unreachable")


if __name__ == "__main__":
    main()

"""Embedded-model wall time, one request at a time against batched decoding.

Runs a spec (default: evals/gender.yaml, on the embedded SmolLM2) twice, back to back, each as
`python -m evalrun run SPEC --concurrency N` in a fresh subprocess with a fresh EVALRUN_HOME (so
no answer comes from the store): first at concurrency 1 (one sequence decoding at a time, as
before batching), then at the batched concurrency (default 8, the batcher's slots). Prints each
run's whole-process wall time and run phase (`duration_s` in summary.json: the request loop,
without interpreter start, imports and the report), the ratios, and the load average before
and after: llama.cpp's threads spin at their barriers, so another busy process on a 2-core
machine slows a run many times over, and a figure taken under load says nothing.

    .venv/bin/python bench/embedded.py                # the full gender run (240 requests)
    .venv/bin/python bench/embedded.py --limit 16     # 16 items (96 requests), a quicker comparison

With `--before SRC`, a third run comes first: concurrency 1 on another version of the package
(SRC is a `src` folder put first on PYTHONPATH), e.g. the last one before batching:

    git archive 9725b56 src schemas | tar -x -C /tmp/before
    .venv/bin/python bench/embedded.py --before /tmp/before/src

Each line also gives the share of the machine's CPU time that other processes took during the run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def busy_jiffies() -> tuple[int, int]:
    """CPU time of the whole machine from /proc/stat: (busy, total), in clock ticks."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


def run(spec: Path, concurrency: int, limit: int | None, source: Path | None = None) -> dict[str, float]:
    """One `evalrun run` with a fresh EVALRUN_HOME: wall time, run phase, requests, tokens generated
    and the share of CPU time other processes took meanwhile."""
    with tempfile.TemporaryDirectory(prefix="evalrun-bench-embedded-") as tmp:
        folder = Path(tmp)
        env = {**os.environ, "EVALRUN_HOME": str(folder / "home"), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        if source is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(source.resolve()), *filter(None, [env.get("PYTHONPATH")])])
        command = [sys.executable, "-m", "evalrun", "run", str(spec), "--concurrency", str(concurrency),
                   "--out", str(folder / "out"), "--no-figures"]
        if limit is not None:
            command += ["--limit", str(limit)]
        busy, total = busy_jiffies()
        children = os.times()
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - start
        ours = (os.times().children_user + os.times().children_system
                - children.children_user - children.children_system) * os.sysconf("SC_CLK_TCK")
        busy_after, total_after = busy_jiffies()
        others = max(busy_after - busy - ours, 0) / max(total_after - total, 1)
        if done.returncode != 0:
            raise SystemExit(f"evalrun failed ({done.returncode}):\n{done.stderr[-2000:]}")
        report = Path(done.stdout.strip().splitlines()[-1])
        summary = json.loads((report.parent / "summary.json").read_text(encoding="utf-8"))
        totals = summary["totals"]
        if totals["failed"]:
            raise SystemExit(f"{totals['failed']} of {totals['jobs']} requests failed: see {report}")
        return {"wall_s": wall, "run_s": summary["run"]["duration_s"], "jobs": totals["jobs"],
                "tokens": totals["completion_tokens"], "others": others}


def compare(spec: Path, limit: int | None, concurrency: int, before: Path | None = None) -> None:
    """Run the spec at concurrency 1 and batched (after `before`'s concurrency 1, if given); print the figures."""
    load = os.getloadavg()[0]
    runs = []
    if before is not None:
        runs.append(("before, conc. 1", run(spec, 1, limit, before)))
    one = run(spec, 1, limit)
    batched = run(spec, concurrency, limit)
    after = os.getloadavg()[0]
    jobs = int(one["jobs"])
    print(f"{spec.name}, {jobs} requests, {os.cpu_count()} CPUs, load average {load:.2f} before, {after:.2f} after")
    runs += [("concurrency 1", one), (f"concurrency {concurrency}", batched)]
    for name, figures in runs:
        print(f"  {name:16} wall {figures['wall_s']:6.1f} s   run phase {figures['run_s']:6.1f} s   "
              f"{figures['jobs'] / figures['run_s']:5.2f} requests/s   {figures['tokens']:5.0f} tokens generated   "
              f"other processes {figures['others']:4.0%} of the CPUs")
    for name, figures in runs[:-1]:
        print(f"  concurrency {concurrency} against {name}: {figures['wall_s'] / batched['wall_s']:.2f}x faster "
              f"in wall time, {figures['run_s'] / batched['run_s']:.2f}x in the run phase", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=ROOT / "evals" / "gender.yaml")
    parser.add_argument("--limit", type=int, help="use only the first N items")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrency of the batched run")
    parser.add_argument("--before", type=Path, metavar="SRC", help="first run concurrency 1 on this source tree")
    args = parser.parse_args()
    compare(args.spec, args.limit, args.concurrency, args.before)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Wall time of `evalrun SPEC` when every answer is already in the store (issue: under 2 s).

Fills a store first (a run that asks whatever is missing: on an empty store the embedded gender run
takes minutes), then times whole `evalrun run SPEC` processes, interpreter start to exit:

- memo cold: the report memo (`$EVALRUN_HOME/cache/reports`) removed first, so statistics and
  figures are computed and drawn (statsmodels, scipy and matplotlib imported);
- memo warm: the usual rerun, statistics and figures reused.

    .venv/bin/python bench/rerun.py                                  # evals/gender.yaml, a new store
    .venv/bin/python bench/rerun.py --home /tmp/gender-home --runs 5  # a store already filled

Each line gives the median and the range over `--runs` processes, and the share of the machine's CPU
time other processes took meanwhile (on 2 cores any other busy process shows in these figures).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from embedded import busy_jiffies  # bench/embedded.py: run as a script, bench/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]


def once(spec: Path, home: Path, out: Path) -> tuple[float, float]:
    """One whole `evalrun run`: its wall time and the share of CPU time others took meanwhile."""
    env = {**os.environ, "EVALRUN_HOME": str(home)}
    busy, total = busy_jiffies()
    children = os.times()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "evalrun", "run", str(spec), "--out", str(out)], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: more failed or unparsed jobs than --max-errors, still a report
        sys.exit(f"evalrun exited {done.returncode}:\n{done.stderr}")
    after = os.times()
    busy2, total2 = busy_jiffies()
    ticks = os.sysconf("SC_CLK_TCK")
    ours = (after.children_user + after.children_system - children.children_user - children.children_system) * ticks
    others = max(0.0, (busy2 - busy) - ours) / max(1, total2 - total)
    return wall, others


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "evals" / "gender.yaml")
    parser.add_argument("--home", type=Path, help="EVALRUN_HOME holding the answers (default: a new one)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evalrun-bench-rerun-") as tmp:
        home = args.home or Path(tmp) / "home"
        out = Path(tmp) / "out"
        fill, _ = once(args.spec, home, out)
        print(f"{args.spec.name}: first run (asks what the store lacks) {fill:.1f} s")
        for label, cold in (("memo cold", True), ("memo warm", False)):
            walls, others = [], []
            for _ in range(args.runs):
                if cold:
                    shutil.rmtree(home / "cache" / "reports", ignore_errors=True)
                wall, other = once(args.spec, home, out)
                walls.append(wall)
                others.append(other)
            print(f"  stored rerun, {label}: median {statistics.median(walls):.2f} s (min {min(walls):.2f}, "
                  f"max {max(walls):.2f}, {args.runs} runs), other processes {100 * max(others):.0f}% of CPU at most")


if __name__ == "__main__":
    main()

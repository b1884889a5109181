"""evalrun against promptfoo in one alternating series, with the load the machine had before each run.

On a shared machine the speed of either tool moves with the other work on it more than with the code
(bench/README.md), so one run of each says little. This runs them alternately, `--pairs` times each
(evalrun, promptfoo, evalrun, ...), on throughput.py's loopback server and spec: 4,992 requests by
default, concurrency 100, 50 ms latency, whole processes timed from start to exit. Before each run it
prints the 1-minute load average (os.getloadavg) and the usable CPUs, and after an evalrun run how many
sender processes it started (its default follows the free CPU: evalrun.workers.senders_for).

    flock /tmp/evalrun-bench.lock .venv/bin/python bench/load.py --promptfoo /work/promptfoo

Without a promptfoo install (see throughput.py's docstring) it runs evalrun alone and says so. `--workers N`
passes an explicit count to every evalrun run; `--also-workers N` adds a third arm with that count to each
round, so the default's choice can be checked against a fixed one under the same load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import throughput  # runs as a script from bench/, which is on sys.path


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:4.2f} (5 min {five:4.2f}) on {len(os.sched_getaffinity(0))} CPUs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=4992)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--pairs", type=int, default=3, help="runs of each tool")
    parser.add_argument("--workers", type=int, metavar="N", help="evalrun's --workers (default: its own choice)")
    parser.add_argument("--also-workers", type=int, metavar="N",
                        help="a third arm each round: evalrun with --workers N")
    parser.add_argument("--promptfoo", metavar="DIR", type=Path, default=os.environ.get(throughput.PROMPTFOO_ENV),
                        help="folder where promptfoo is installed (node_modules/.bin/promptfoo)")
    args = parser.parse_args()
    cli = args.promptfoo / "node_modules" / ".bin" / "promptfoo" if args.promptfoo else None
    if cli is None or not cli.exists():
        print(f"promptfoo not run: not installed ({cli or 'no --promptfoo DIR'}); evalrun alone", flush=True)
        cli = None
    label = "default" if args.workers is None else f"--workers {args.workers}"
    arms: list[tuple[str, int | None]] = [(f"evalrun ({label})", args.workers)]
    if args.also_workers is not None:
        arms.append((f"evalrun (--workers {args.also_workers})", args.also_workers))
    times: dict[str, list[float]] = {name: [] for name, _ in arms}
    if cli is not None:
        times["promptfoo"] = []
    print(f"{args.jobs} requests, concurrency {args.concurrency}, {args.latency * 1000:.0f} ms server, "
          f"whole processes, alternating", flush=True)
    with throughput.serving(args.latency) as base:
        for round_ in range(1, args.pairs + 1):
            for name, workers in arms:
                seen = _load()
                ours = throughput.run_evalrun(base, args.jobs, args.concurrency, workers=workers)
                times[name].append(ours["wall_s"])
                print(f"{round_}  {name:24s} {ours['wall_s']:6.1f} s   {seen}   senders {ours['senders']:.0f}, "
                      f"run phase {ours['duration_s']:.1f} s", flush=True)
            if cli is not None:
                seen = _load()
                wall = throughput.run_promptfoo(args.promptfoo, base, args.jobs, args.concurrency)
                times["promptfoo"].append(wall)
                print(f"{round_}  {'promptfoo':24s} {wall:6.1f} s   {seen}", flush=True)
    print(f"after: {_load()}")
    for name, walls in times.items():
        print(f"{name:26s} {' / '.join(f'{w:.1f}' for w in walls)} s   median {statistics.median(walls):.1f} s")
    if cli is not None:
        ours_median, theirs_median = statistics.median(times[arms[0][0]]), statistics.median(times["promptfoo"])
        print(f"evalrun ({label}) is {theirs_median / ours_median:.2f}x as fast as promptfoo (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

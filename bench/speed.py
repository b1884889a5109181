"""Issue 13's figures in one run: the embedded model one request at a time and batched, then evalrun
against bare litellm and promptfoo on the loopback server.

    git archive 9725b56 src schemas | tar -x -C /tmp/before     # the code before batching
    flock /tmp/evalrun-bench.lock .venv/bin/python bench/speed.py --before /tmp/before/src --promptfoo /work/promptfoo

First embedded.py's comparison (evals/gender.yaml on the embedded SmolLM2 at concurrency 1, then
batched at concurrency 8), then throughput.py's (a) to (d) at 5,000 requests, concurrency 100,
50 ms latency. Run it on an otherwise idle machine: on 2 cores any other busy process changes
every figure (each part prints the load it saw).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# both run as scripts from bench/, which is on sys.path
import embedded
import throughput


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=embedded.ROOT / "evals" / "gender.yaml")
    parser.add_argument("--limit", type=int, default=16, help="items of the embedded run (0: all)")
    parser.add_argument("--before", type=Path, metavar="SRC",
                        help="also run the embedded model at concurrency 1 on this source tree first (embedded.py)")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--promptfoo", metavar="DIR", type=Path, default=os.environ.get(throughput.PROMPTFOO_ENV))
    args = parser.parse_args()
    print("== the embedded model: one request at a time, then batched", flush=True)
    embedded.compare(args.spec, args.limit or None, 8, args.before)
    print("== remote requests: evalrun, bare litellm, promptfoo", flush=True)
    with throughput.serving(args.latency) as base:
        throughput.three_way(base, args.jobs, args.concurrency, args.latency, args.promptfoo)
    return 0


if __name__ == "__main__":
    sys.exit(main())

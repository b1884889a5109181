"""Where the embedded model's time goes, and how fast any prefix cache could make a spec here.

Runs a spec (default: evals/gender.yaml) on the embedded SmolLM2 in a fresh subprocess per run
(concurrency 1, then the batched concurrency; with `--before SRC`, first concurrency 1 on that
source tree), each timing every `llama_decode` call in-process: prompt processing (calls with
prompt tokens in them) against generation (calls where every token gives logits), tokens
decoded, seconds and the rate, and the milliseconds of a generation step by its width.

Then the bound. With the current code it records every prompt and the tokens generated after
it, and counts the prompt tokens that no cache could spare: those of no earlier prompt's or
answer's prefix (an unbounded cache of every KV ever computed). That count at the batched run's
prompt rate, plus its generation and everything outside llama_decode, is the least wall time
any scheduling of these requests could take on this machine with this llama.cpp build; the
ratio of the first run to it is the most a prefix cache could gain over it.

    .venv/bin/python bench/phases.py --limit 16 --before /tmp/before/src
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def measure(spec: Path, concurrency: int, limit: int | None) -> dict[str, Any]:
    """One run in this process, llama_decode timed; its figures, prompts and answers' tokens."""
    import llama_cpp.llama_cpp as lib

    calls: list[tuple[int, int, float]] = []  # (tokens, tokens giving logits, seconds)
    decode = lib.llama_decode

    def timed(ctx: Any, batch: Any) -> int:
        logits = sum(1 for i in range(batch.n_tokens) if batch.logits[i])
        start = time.perf_counter()
        code = decode(ctx, batch)
        calls.append((batch.n_tokens, logits, time.perf_counter() - start))
        return int(code)

    lib.llama_decode = timed
    conversations: list[tuple[list[int], list[int]]] = []  # (prompt, tokens generated into its KV)
    import evalrun

    try:  # the batcher of the current code; an earlier tree decodes through llama-cpp-python's Llama
        from evalrun.embedded.batcher import Batcher
    except ImportError:
        Batcher = None  # type: ignore[assignment,misc]
    if Batcher is not None:
        finish = Batcher._finish

        def recorded(self: Any, sequence: Any, reason: str) -> None:
            conversations.append((sequence.prompt, sequence.tokens[:max(sequence.pos - len(sequence.prompt), 0)]))
            finish(self, sequence, reason)

        Batcher._finish = recorded  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="evalrun-bench-phases-") as tmp:
        os.environ["EVALRUN_HOME"] = str(Path(tmp) / "home")
        start = time.perf_counter()
        evalrun.run(spec, limit=limit, concurrency=concurrency, out=Path(tmp) / "out", figures=False,
                    warn=lambda _: None)
        wall = time.perf_counter() - start
    generation = [c for c in calls if c[0] == c[1]]
    prompts = [c for c in calls if c[0] != c[1]]
    widths: dict[int, list[float]] = {}
    for n, _, seconds in generation:
        widths.setdefault(n, []).append(seconds)
    return {"wall_s": wall, "decode_s": sum(c[2] for c in calls),
            "prompt_tokens": sum(c[0] for c in prompts), "prompt_s": sum(c[2] for c in prompts),
            "generated": sum(c[0] for c in generation), "generation_s": sum(c[2] for c in generation),
            "step_ms": {n: 1000 * sum(v) / len(v) for n, v in sorted(widths.items())},
            "conversations": conversations}


def floor(conversations: list[tuple[list[int], list[int]]]) -> int:
    """Prompt tokens that no cache of every earlier prompt's and answer's KV would hold (at least
    one per prompt: its last token's logits give the first answer token)."""
    held: set[tuple[int, ...]] = set()
    needed = 0
    for prompt, answer in conversations:
        needed += max(sum(tuple(prompt[:i]) not in held for i in range(1, len(prompt) + 1)), 1)
        full = prompt + answer
        held.update(tuple(full[:i]) for i in range(1, len(full) + 1))
    return needed


def run(spec: Path, concurrency: int, limit: int | None, source: Path | None = None) -> dict[str, Any]:
    """measure() in a fresh interpreter (with `source` first on the path)."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source.resolve()), *filter(None, [env.get("PYTHONPATH")])])
    command = [sys.executable, __file__, "--measure", str(spec), "--concurrency", str(concurrency),
               *(["--limit", str(limit)] if limit is not None else [])]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"the run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=ROOT / "evals" / "gender.yaml")
    parser.add_argument("--limit", type=int, help="use only the first N items")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrency of the batched run")
    parser.add_argument("--before", type=Path, metavar="SRC", help="first run concurrency 1 on this source tree")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # one run, in this process
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.concurrency, args.limit)))
        return 0
    runs = [("before, conc. 1", run(args.spec, 1, args.limit, args.before))] if args.before else []
    runs += [("concurrency 1", run(args.spec, 1, args.limit)),
             (f"concurrency {args.concurrency}", run(args.spec, args.concurrency, args.limit))]
    for name, r in runs:
        steps = ", ".join(f"{n}: {ms:.1f}" for n, ms in r["step_ms"].items())
        print(f"{name:16} wall {r['wall_s']:5.1f} s, llama_decode {r['decode_s']:5.1f} s: "
              f"{r['prompt_tokens']:6} prompt tokens in {r['prompt_s']:5.1f} s "
              f"({r['prompt_tokens'] / r['prompt_s']:4.0f}/s), {r['generated']:5} generated in "
              f"{r['generation_s']:5.1f} s\n{'':17}ms a generation step by width: {steps}")
    batched = runs[-1][1]
    least = floor([(p, a) for p, a in batched["conversations"]])
    outside = batched["wall_s"] - batched["decode_s"]
    bound = least * batched["prompt_s"] / batched["prompt_tokens"] + batched["generation_s"] + outside
    print(f"prompt tokens no cache could spare: {least} (the batched run decoded {batched['prompt_tokens']})")
    print(f"least wall time of the batched run with them: {bound:.1f} s "
          f"({outside:.1f} s outside llama_decode); first run against it: {runs[0][1]['wall_s'] / bound:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

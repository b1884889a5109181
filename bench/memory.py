"""Peak memory of evalrun's own stages, at sizes the HTTP benchmark would take hours to reach.

For each size, a fresh subprocess expands a generated spec (a fixed number of items, two
variants, one model; the samples make up the size), hands every job a synthetic answer of
--answer-chars characters through the results table (results.Results: labelling, scratch rows),
writes results.parquet and then the report (statistics, summary.json, report.md), exactly as
`evalrun run` does after its request loop. No model and no litellm call is involved, so what
grows here is evalrun's alone. The parent reads each child's peak RSS with os.wait4.

    .venv/bin/python bench/memory.py --sizes 5000,50000,500000
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

SPEC = """name: memory
dataset: {{path: items.jsonl}}
labels: [pro, con]
variants:
  ask: {{prompt: "Is {{{{ text }}}} true?", extract: {{type: choice, choices: {{pro: [], con: []}}}}}}
  tell: {{prompt: "Does {{{{ text }}}} hold?", extract: {{type: choice, choices: {{pro: [], con: []}}}}}}
models: [openai/bench]
samples: {samples}
"""


def one(jobs: int, items: int, answer_chars: int) -> dict[str, float]:
    """In the child: every stage after the request loop, timed."""
    os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")  # as cli.main sets it
    from evalrun.dataset import load_dataset
    from evalrun.design import Design
    from evalrun.record import ModelRecord, RunRecord
    from evalrun.reporting import RESULTS, write_report
    from evalrun.results import Results
    from evalrun.runner import Outcome
    from evalrun.spec import load_spec
    from evalrun.store import StoredResponse

    folder = Path(tempfile.mkdtemp(prefix="evalrun-memory-"))
    with (folder / "items.jsonl").open("w", encoding="utf-8") as f:
        for i in range(items):
            f.write(json.dumps({"id": f"i{i}", "text": f"claim number {i}"}) + "\n")
    (folder / "spec.yaml").write_text(SPEC.format(samples=jobs // (2 * items)), encoding="utf-8")
    spec = load_spec(folder / "spec.yaml")
    dataset = load_dataset(spec)
    words = ("pro, because " + "the claim holds for reasons given at length " * answer_chars)[:answer_chars]
    times: dict[str, float] = {}
    start = time.perf_counter()
    with Results(spec, dataset, folder / "scratch") as results:
        for n, job in enumerate(Design(spec, dataset).expand()):
            answer = StoredResponse(
                key=job.key, model=job.model.model, api_base=None, request="{}", status="ok",
                text=words if n % 3 else "con" + words[3:], finish_reason="stop", prompt_tokens=12,
                completion_tokens=answer_chars // 4, cost=None, latency=0.05, attempts=1, error_class=None,
                error_message=None, created_at=time.time())
            results.add(Outcome(job, answer, cached=False))
        times["label_and_keep_s"] = time.perf_counter() - start
        run_dir = folder / "run"
        run_dir.mkdir()
        start = time.perf_counter()
        results.write_parquet(run_dir / RESULTS)
        times["write_parquet_s"] = time.perf_counter() - start
    record = RunRecord(
        name=spec.name, description="", run_id="bench", spec_path="spec.yaml", spec_sha256=spec.sha256,
        dataset_source=dataset.source, dataset_sha256=dataset.sha256, items=items, labels=spec.labels,
        variants=list(spec.variants), compare=[list(p) for p in spec.compare], has_gold=False,
        models=[ModelRecord(m.name, m.model) for m in spec.models], samples=spec.samples, params={}, seed=0,
        started="", duration_s=0.0, versions={})
    start = time.perf_counter()
    totals = write_report(run_dir, record)["totals"]
    times["write_report_s"] = time.perf_counter() - start
    if totals["answered"] != jobs:
        raise RuntimeError(f"the report counts {totals['answered']} answers of {jobs}")
    times["results_mb"] = (run_dir / RESULTS).stat().st_size / 2**20
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5000,50000,500000", help="job counts (multiples of 2 x --items)")
    parser.add_argument("--items", type=int, default=2500)
    parser.add_argument("--answer-chars", type=int, default=600, help="length of every synthetic answer")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.items, args.answer_chars)))
        return 0
    print(f"{args.items} items x 2 variants x 1 model, samples to make up each size; answers of "
          f"{args.answer_chars} characters; python {sys.version.split()[0]}, {os.cpu_count()} CPUs", flush=True)
    for jobs in [int(n) for n in args.sizes.split(",") if n.strip()]:
        proc = subprocess.Popen([sys.executable, __file__, "--one", str(jobs), "--items", str(args.items),
                                 "--answer-chars", str(args.answer_chars)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"the run of {jobs} jobs failed")
        t = json.loads(out.strip().splitlines()[-1])
        print(f"{jobs:8d} jobs: peak RSS {usage.ru_maxrss / 1024:5.0f} MB; "
              f"label and keep {t['label_and_keep_s']:6.1f} s, "
              f"results.parquet {t['write_parquet_s']:5.1f} s ({t['results_mb']:.0f} MB), "
              f"report {t['write_report_s']:4.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

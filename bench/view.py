"""Time to build `evalrun view`'s page for a run of 10,000 answers, and the page's size (issue 25: 10,000
answers open in under 2 s).

Writes a synthetic run folder (results.parquet, readings.parquet, summary.json as a run writes them:
items x 2 variants x 2 paraphrases x 2 models, the story variant also read by a judge), then times, over
`--runs` repeats, reading it and writing the self-contained HTML file (`evalrun view DIR --static FILE`'s
work, in-process) and building the served page and its data.json. The browser's part (parsing the
embedded JSON, drawing the first 50 items) cannot be timed here: no browser is installed.

    .venv/bin/python bench/view.py                   # 10,000 answers
    .venv/bin/python bench/view.py --answers 50000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from evalrun.record import ModelRecord, RunRecord
from evalrun.reporting import READINGS, RESULTS
from evalrun.results import READINGS as READING_COLUMNS
from evalrun.results import columns
from evalrun.view import serve, write_static

WORDS = ("she", "he", "her", "his", "the", "story", "walked", "home", "sister", "father", "rain", "quiet",
         "town", "night", "smiled", "door", "letter", "garden", "train", "morning")
VARIANTS, PARAPHRASES, MODELS = ("direct", "story"), (0, 1), ("model-a", "model-b")


def synthetic_run(folder: Path, answers: int, seed: int = 1) -> None:
    """A run folder of about `answers` answers (rounded down to whole items)."""
    rng = random.Random(seed)
    items = answers // (len(VARIANTS) * len(PARAPHRASES) * len(MODELS))
    rows: list[dict[str, object]] = []
    readings: list[dict[str, object]] = []
    for i in range(items):
        item_text = " ".join(rng.choices(WORDS, k=40))
        gold = rng.choice(("female", "male"))
        for variant in VARIANTS:
            for paraphrase in PARAPHRASES:
                prompt = f"Wording {paraphrase} of {variant}: read this text.\n\n{item_text}\n\nWho wrote it?"
                for model in MODELS:
                    job_id = f"i{i:05d}/{variant}/p{paraphrase}/{model}/0"
                    label = rng.choice(("female", "male", None))
                    rows.append({"job_id": job_id, "key": job_id, "item_id": f"i{i:05d}", "item_text": item_text,
                                 "variant": variant, "model": model, "model_string": f"openai/{model}",
                                 "sample": 0, "prompt": prompt, "response": " ".join(rng.choices(WORDS, k=60)),
                                 "label": label, "extraction": f"keyword {label!r}" if label else "no keyword",
                                 "gold": gold, "attempts": 1, "cached": False, "paraphrase": paraphrase})
                    if variant == "story":
                        judged = rng.choice(("female", "male", None))
                        readings += [{"job_id": job_id, "reader": "extract", "label": label, "reason": "counts"},
                                     {"job_id": job_id, "reader": "judge", "label": judged, "reason": "verdict",
                                      "judge_response": json.dumps([f"LABEL: {judged}"])}]
    pl.DataFrame(rows, schema=columns()).write_parquet(folder / RESULTS)
    pl.DataFrame(readings, schema=READING_COLUMNS).write_parquet(folder / READINGS)
    record = RunRecord(
        name="synthetic", description=None, run_id="bench", spec_path="bench.yaml", spec_sha256="0",
        dataset_source="bench.jsonl", dataset_sha256="0", items=items, labels=["female", "male"],
        variants=list(VARIANTS), compare=[list(VARIANTS)], has_gold=True,
        models=[ModelRecord(m, f"openai/{m}") for m in MODELS], samples=1, params={}, seed=seed,
        started="2026-01-01T00:00:00+0000", duration_s=0.0, versions={},
        design={"axes": ["paraphrase"], "paraphrases": dict.fromkeys(VARIANTS, len(PARAPHRASES))},
        readers={"story": ["judge"]})
    (folder / "summary.json").write_text(json.dumps({"run": record.to_json()}), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        synthetic_run(folder, args.answers)
        out = folder / "view.html"
        static, served = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            write_static(folder, out)
            static.append(time.perf_counter() - start)
            start = time.perf_counter()
            serve(folder).server_close()
            served.append(time.perf_counter() - start)
        answers = pl.scan_parquet(folder / RESULTS).select(pl.len()).collect().item()
        print(f"{answers} answers; HTML file {out.stat().st_size / 1e6:.2f} MB")
        for name, times in (("static file (read + write)", static), ("served page + data.json", served)):
            print(f"{name}: median {statistics.median(times):.3f} s (range {min(times):.3f}-{max(times):.3f} s, "
                  f"{args.runs} runs)")


if __name__ == "__main__":
    main()

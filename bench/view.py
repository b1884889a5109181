"""Time to build `evalrun view`'s page for a run of 10,000 answers, the page's size, and the time a browser
takes to open it (issue 25: 10,000 answers open in under 2 s).

Writes a synthetic run folder (results.parquet, readings.parquet, summary.json as a run writes them:
items x 2 variants x 2 paraphrases x 2 models, the story variant also read by a judge), then times, over
`--runs` repeats, reading it and writing the self-contained HTML file (`evalrun view DIR --static FILE`'s
work, in-process) and building the served page and its data.json.

Then the browser's part, where Chromium and playwright are installed (as for the tests: Debian's `chromium`,
the test extra): headless Chromium opens the static file, and the served page from `serve` on 127.0.0.1, each
`--runs` times in a fresh browser context, and the page itself says how long it took from the start of the
navigation (performance.now(), whose origin that is): "drawn" when page.js has parsed the data and put the
first 50 items in the page (its performance mark `evalrun:drawn`), "painted" at the frame after that (a
requestAnimationFrame, then a task: the standard way to see a frame's paint done). Both include reading the
file or the server's answers (the served page also fetches data.json and the person's labels).

    .venv/bin/python bench/view.py                   # 10,000 answers
    .venv/bin/python bench/view.py --answers 50000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import threading
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


# Chromium's flags, as tests/conftest.py's CHROMIUM_FLAGS: headless, and no connection of its own (without
# the networking ones it waits on connections this machine refuses)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# run in the page before its own script: when page.js marks its first items drawn, note the time of the
# frame after (a task queued from requestAnimationFrame runs once that frame is painted)
PAINTED = """const mark = performance.mark.bind(performance);
performance.mark = (name, ...rest) => {
  const made = mark(name, ...rest);
  if (name === "evalrun:drawn") {
    requestAnimationFrame(() => setTimeout(() => { window.evalrunPainted = performance.now(); }));
  }
  return made;
};"""


def in_browser(urls: dict[str, str], runs: int) -> dict[str, tuple[list[float], list[float]]] | str:
    """For each page (name -> address): the times from navigation to drawn and to painted, in seconds, over
    `runs` opens; or why the browser's part cannot run here."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return "no Chromium installed (Debian: apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in urls}
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            for _ in range(runs):
                for name, url in urls.items():
                    context = browser.new_context()  # nothing cached from the last open
                    context.add_init_script(PAINTED)
                    page = context.new_page()
                    page.goto(url)
                    page.wait_for_function("() => window.evalrunPainted !== undefined", timeout=60_000)
                    drawn, painted = page.evaluate(
                        "[performance.getEntriesByName('evalrun:drawn')[0].startTime, window.evalrunPainted]")
                    times[name][0].append(drawn / 1000)
                    times[name][1].append(painted / 1000)
                    context.close()
        finally:
            browser.close()
    return times


def summary(times: list[float]) -> str:
    return f"median {statistics.median(times):.3f} s (range {min(times):.3f}-{max(times):.3f} s, {len(times)} runs)"


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
            print(f"{name}: {summary(times)}")

        server = serve(folder)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            opened = in_browser({"static file": out.as_uri(), "served page": server.url}, args.runs)
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
        if isinstance(opened, str):
            print(f"in the browser: not timed: {opened}")
            return
        for name, (drawn, painted) in opened.items():
            print(f"{name} in headless Chromium, to the first items drawn: {summary(drawn)}; "
                  f"painted: {summary(painted)}")


if __name__ == "__main__":
    main()

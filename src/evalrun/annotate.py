"""`evalrun annotate RUN_DIR`: a person labels a sample of a run's answers in the terminal.

The sample is stratified over the variants (each gets an equal share, as far as its answers go) and, within
a variant, takes first the answers the readers disagree on or could not read: those are where a reader's
accuracy is in doubt. It is drawn from the seed alone, never from the labels already given, so the same
command run again walks the same answers and skips those this person has labelled: labelling resumes.
The person sees the prompt and the answer, never a reader's label, so the readers cannot lead them.

Each label goes to the response store the moment it is given (store.py's human_labels, keyed by the answer:
its request and its text), so it survives reruns and serves every later run that gets the same answer; the
report reads it there as the reader `human` ("Readers against a person", reporting/sections/human.py).
"""

from __future__ import annotations

import getpass
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from .errors import EvalrunError
from .record import RunRecord
from .reporting import READINGS, RESULTS
from .results import readers_disagree
from .store import UNCLEAR, HumanLabel, Store, answer_key


@dataclass(frozen=True)
class Answer:
    """One answer a person may label, as the sample draws it and the terminal shows it."""

    key: str  # answer_key(request key, text)
    variant: str
    item_id: str
    prompt: str
    text: str
    doubtful: bool  # the variant's readers disagree on it, or its primary reader could not read it


def answers(run_dir: Path) -> list[Answer]:
    """The run's answers (failed jobs have none), each once, in the results' order."""
    results = pl.read_parquet(run_dir / RESULTS, columns=["job_id", "key", "variant", "item_id", "prompt",
                                                            "response", "label", "error_class"])
    results = results.filter(pl.col("error_class").is_null() & pl.col("response").is_not_null())
    disagreeing: set[str] = set()
    if (run_dir / READINGS).exists():
        disagreeing = readers_disagree(pl.read_parquet(run_dir / READINGS, columns=["job_id", "label"]))
    found: dict[str, Answer] = {}
    for r in results.iter_rows(named=True):
        key = answer_key(r["key"], r["response"])
        if key not in found:
            found[key] = Answer(key, r["variant"], str(r["item_id"]), r["prompt"] or "", r["response"],
                                r["label"] is None or r["job_id"] in disagreeing)
    return list(found.values())


def sample(pool: Sequence[Answer], n: int, seed: int) -> list[Answer]:
    """`n` answers (or all, when fewer), the same for the same pool and seed: an equal share per variant (a
    variant with fewer answers gives its remainder to the others), within each the doubtful answers first,
    each group in random order; the whole sample shuffled, so the variants come mixed."""
    rng = random.Random(seed)
    queues: dict[str, list[Answer]] = {}
    for variant in sorted({a.variant for a in pool}):
        doubtful = [a for a in pool if a.variant == variant and a.doubtful]
        sure = [a for a in pool if a.variant == variant and not a.doubtful]
        rng.shuffle(doubtful)
        rng.shuffle(sure)
        queues[variant] = doubtful + sure
    chosen: list[Answer] = []
    while len(chosen) < n and any(queues.values()):
        for queue in queues.values():  # one from each variant in turn: the shares stay equal
            if queue and len(chosen) < n:
                chosen.append(queue.pop(0))
    rng.shuffle(chosen)
    return chosen


@dataclass(frozen=True)
class Tally:
    labelled: int  # labels given in this session
    skipped: int
    earlier: int  # answers of the sample this person had labelled before
    left: int  # answers not reached (quit, or the input ended)


def label(chosen: Sequence[Answer], labels_of: Callable[[str], Sequence[str]], store: Store, who: str,
          ask: Callable[[str], str | None], say: Callable[[str], None]) -> Tally:
    """Ask `who` for a label of each answer not yet labelled by them, storing each as it is given.

    `labels_of(variant)` gives the labels a variant's answers are read as (variants may read different ones);
    `ask(prompt)` returns the person's line, or None when the input has ended (which quits); `say` shows text.
    Keys: 1..k the answer's variant's labels, u unclear, s skip, q quit."""
    done = {h.answer_key for h in store.labels([a.key for a in chosen], who)}
    todo = [a for a in chosen if a.key not in done]
    given = skipped = 0
    for place, answer in enumerate(todo, start=1):
        say(f"\n[{place}/{len(todo)}] item {answer.item_id}, variant {answer.variant}\n"
            f"--- prompt\n{answer.prompt}\n--- answer\n{answer.text}\n")
        keys = {str(i): name for i, name in enumerate(labels_of(answer.variant), start=1)} | {"u": UNCLEAR}
        menu = ", ".join(f"{k} {name}" for k, name in keys.items()) + ", s skip, q quit"
        while True:
            reply = ask(f"label ({menu})? ")
            choice = None if reply is None else reply.strip().lower()
            if choice in (None, "q"):
                return Tally(given, skipped, len(done), len(todo) - place + 1)
            if choice == "s":
                skipped += 1
                break
            if choice in keys:
                store.put_label(HumanLabel(answer.key, keys[choice], who,
                                           datetime.now(UTC).isoformat(timespec="seconds")))
                given += 1
                break
            say(f"{reply!r} is not one of: {menu}")
    return Tally(given, skipped, len(done), 0)


def annotate(run_dir: Path, n: int, seed: int, who: str | None, ask: Callable[[str], str | None],
             say: Callable[[str], None]) -> Tally:
    """Label a sample of `n` of the run's answers as `who` (default: the user logged in)."""
    if n < 1:
        raise EvalrunError(f"--sample must be at least 1, not {n}")
    if not (run_dir / RESULTS).is_file():
        raise EvalrunError(f"{run_dir}: not a run folder (no {RESULTS})")
    record = RunRecord.load(run_dir / "summary.json")
    person = who or getpass.getuser()
    store = Store()
    try:
        tally = label(sample(answers(run_dir), n, seed), record.labels_of, store, person, ask, say)
    finally:
        store.close()
    say(f"\n{tally.labelled} labelled by {person} now, {tally.earlier} before, {tally.skipped} skipped, "
        f"{tally.left} left; in {store.path}")
    return tally

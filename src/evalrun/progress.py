"""Progress of a run: a live rich display on a terminal, periodic plain lines elsewhere (CI, pipes).

Both print to stderr, so stdout carries only the report's path.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from .providers import CallError
from .sendpath import Outcome


@dataclass
class Tally:
    total: int
    done: int = 0
    cached: int = 0
    errors: int = 0
    retries: int = 0
    tokens: int = 0
    cost: float = 0.0
    cost_unknown: int = 0  # answers whose price litellm does not know
    batches: str = ""  # with --batch: the model's batches and their status at the provider

    def add(self, outcome: Outcome) -> None:
        r = outcome.response
        self.done += 1
        self.cached += outcome.cached
        self.errors += r.status == "error"
        self.tokens += (r.prompt_tokens or 0) + (r.completion_tokens or 0)
        if r.status == "ok":
            if r.cost is None:
                self.cost_unknown += 1
            else:
                self.cost += r.cost

    def cost_text(self) -> str:
        """Spent so far; answers litellm cannot price are counted, never taken as free."""
        answered = self.done - self.errors
        if answered and self.cost_unknown == answered:
            return "cost unknown"
        if self.cost_unknown:
            return f"${self.cost:.4f} + {self.cost_unknown} of unknown price"
        return f"${self.cost:.4f}"

    def describe(self) -> str:
        return (f"{self.done}/{self.total} done ({self.cached} stored), {self.errors} errors, "
                f"{self.retries} retries, {self.tokens:,} tokens, {self.cost_text()}"
                + (f", {self.batches}" if self.batches else ""))


class Display:
    """Observer for the runner: it only displays (the runner hands outcomes to the results); call `close()`
    when the run ends."""

    def __init__(self, totals: dict[str, int], stream: TextIO | None = None, interval: float = 10.0) -> None:
        self.tallies = {model: Tally(total) for model, total in totals.items()}
        self.stream = stream or sys.stderr
        self.interval = interval
        self.start = time.monotonic()
        self.last_line = self.start
        self.notes: set[str] = set()
        console = Console(file=self.stream)
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        if console.is_terminal:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), console=console)
            for model, tally in self.tallies.items():
                self.tasks[model] = self.progress.add_task(model, total=tally.total, stats="")
            self.progress.start()

    def expect(self, totals: dict[str, int]) -> None:
        """More jobs to come (a second stage: follow-ups and judges), per model, new models included."""
        for model, n in totals.items():
            tally = self.tallies.setdefault(model, Tally(0))
            tally.total += n
            if self.progress is not None:
                if model not in self.tasks:
                    self.tasks[model] = self.progress.add_task(model, total=tally.total, stats="")
                self.progress.update(self.tasks[model], total=tally.total)

    def finished(self, outcome: Outcome) -> None:
        model = outcome.job.model.name
        tally = self.tallies[model]
        tally.add(outcome)
        if self.progress is not None:
            self.progress.update(self.tasks[model], completed=tally.done, stats=self._rate(tally))
        elif time.monotonic() - self.last_line >= self.interval:
            self.log_lines()

    def retrying(self, model: str, error: CallError) -> None:
        self.tallies[model].retries += 1

    def gave_up(self, model: str, message: str) -> None:
        """A model given up (unreachable): said once, at once, whatever the display."""
        self._say(message)

    def _say(self, message: str) -> None:
        if self.progress is not None:
            self.progress.console.print(message, markup=False, highlight=False, soft_wrap=True)
        else:
            print(message, file=self.stream, flush=True)

    def batch_status(self, model: str, status: str) -> None:
        """A model's batches changed status (`--batch`): shown beside its progress."""
        tally = self.tallies[model]
        tally.batches = status
        if self.progress is not None:
            self.progress.update(self.tasks[model], stats=self._rate(tally))
        elif time.monotonic() - self.last_line >= self.interval:  # batches may run for hours with no answer
            self.log_lines()

    def note(self, message: str) -> None:
        """Something the user should know once (a model not batched, batches left running)."""
        if message not in self.notes:
            self.notes.add(message)
            self._say(message)

    def _rate(self, tally: Tally) -> str:
        if tally.batches:  # answers come a batch at a time: a rate says nothing, the batches' status does
            return f"{tally.batches}  {tally.errors} errors  {tally.tokens:,} tokens  {tally.cost_text()}"
        elapsed = max(time.monotonic() - self.start, 1e-9)
        return (f"{(tally.done - tally.cached) / elapsed:.1f}/s  {tally.errors} errors  {tally.retries} retries  "
                f"{tally.tokens:,} tokens  {tally.cost_text()}")

    def log_lines(self) -> None:
        self.last_line = time.monotonic()
        elapsed = self.last_line - self.start
        for model, tally in self.tallies.items():
            asked = tally.done - tally.cached
            rate = asked / elapsed if elapsed > 0 else 0.0
            left = tally.total - tally.done
            eta = f", ETA {left / rate:.0f} s" if left and rate > 0 else ""
            print(f"[{elapsed:7.1f}s] {model}: {tally.describe()}, {rate:.1f} req/s{eta}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        else:
            self.log_lines()

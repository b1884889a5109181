"""The Python API: run a spec, re-render a report, check a spec, plan the next run. The command line is a
thin layer over it.

    import evalrun
    run = evalrun.run("evals/gender.yaml", models=["evalrun/smollm2"], samples=3)
    run.dir, run.summary["statistics"], run.results  # folder, summary.json, results as a polars DataFrame

Errors a user can fix raise `EvalrunError` (see errors.py); Ctrl-C (or SIGTERM under the CLI)
raises `Interrupted`, after which every answer received is in the store and the same call resumes.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EvalrunError, Interrupted, Problem, ProblemsError, short

if TYPE_CHECKING:
    import polars as pl

    from .dataset import Dataset
    from .design import Design
    from .jobs import Job
    from .planning import Plan
    from .progress import Display
    from .results import Results
    from .runner import Runner
    from .sendpath import BatchPath
    from .spec import Spec
    from .stages import SecondStage
    from .store import Store


@dataclass(frozen=True)
class Run:
    """A finished run: its folder (report.md, summary.json, results.parquet) and its summary."""

    dir: Path
    summary: dict[str, Any]

    @property
    def report_path(self) -> Path:
        return self.dir / "report.md"

    @property
    def results(self) -> pl.DataFrame:
        """One row per job (see results.py for the columns), read from results.parquet."""
        import polars as pl

        from .reporting import RESULTS

        return pl.read_parquet(self.dir / RESULTS)

    @property
    def failed_share(self) -> float:
        totals = self.summary["totals"]
        return totals["failed"] / totals["jobs"] if totals["jobs"] else 0.0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def check(path: Path | str) -> list[Problem]:
    """Every problem of one spec and its dataset (what `validate` reports and `run` refuses), in reading order."""
    from .dataset import load_dataset
    from .errors import in_order
    from .spec import check_columns, read_spec

    path = Path(path)
    spec, problems = read_spec(path)  # a spec with errors is still checked against its dataset: all at once
    if spec is None:
        return problems
    try:
        dataset = load_dataset(spec)
    except ProblemsError as exc:
        return in_order(problems + exc.problems, str(path))
    problems = problems + check_columns(spec, dataset.columns)
    if not any(p.severity == "error" for p in problems):
        problems += _render_problems(spec, dataset)
    return in_order(problems, str(path))


RENDER_CHECK_ROWS = 1000  # rows `validate` renders: enough to meet a bad row, quick on a large dataset


def _render_problems(spec: Spec, dataset: Dataset) -> list[Problem]:
    """What `run` would refuse when rendering the first rows' prompts (a template over its size bounds, an
    unsafe construct, a value a filter cannot take), so `validate` says it first."""
    from .design import Design

    try:
        Design(spec, replace(dataset, items=dataset.items[:RENDER_CHECK_ROWS])).check_renders()
    except ProblemsError as exc:
        return exc.problems
    return []


def _versions() -> dict[str, str]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("evalrun", "litellm", "llama-cpp-python", "polars", "statsmodels", "scipy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def _check_values(samples: int | None, limit: int | None, max_cost: float | None, retries: int,
                  retry_delay: float, workers: int | None) -> None:
    """The command line's values, checked as the spec's own are (samples within the schema's range)."""
    from .spec import schema

    bounds = schema()["properties"]["samples"]  # type: ignore[index]
    if samples is not None and not bounds["minimum"] <= samples <= bounds["maximum"]:
        raise EvalrunError(f"--samples must be between {bounds['minimum']} and {bounds['maximum']:,}, not {samples}")
    if limit is not None and limit < 1:
        raise EvalrunError(f"--limit must be 1 or more (the first N items), not {limit}")
    if max_cost is not None and not max_cost >= 0:  # `not >=` refuses NaN too
        raise EvalrunError(f"--max-cost must be 0 or more (USD), not {max_cost:g}")
    if retries < 0 or not retry_delay >= 0:
        raise EvalrunError("--retries and --retry-delay must be 0 or more")
    if workers is not None and workers < 0:
        raise EvalrunError(f"--workers must be 0 or more (0: send from the run's own process), not {workers}")


def _writable(folder: Path, what: str) -> None:
    """Refuse a folder that cannot be created or written now, before any request is paid for."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise EvalrunError(f"{folder}: {what} cannot be written: {exc.strerror or exc}") from None


def _configure(spec: Spec, models: Sequence[str] | None, samples: int | None, concurrency: int | None,
               rpm: float | None, tpm: float | None, judge: str | None) -> Spec:
    from .spec import model_from_string

    names = [model_from_string(m).name for m in models or []]
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise EvalrunError(f"--model: '{twice}' is given twice (a model string names one model, whatever its "
                           "address; two servers of one model need two `models:` entries with their own names)")
    if any(v is not None and v <= 0 for v in (concurrency, rpm, tpm)):
        raise EvalrunError("--concurrency, --rpm and --tpm must be more than 0")
    if judge is not None:
        model_from_string(judge)  # a mistyped address is refused here, before anything is asked
    spec = spec.with_overrides(models=list(models) if models else None, samples=samples, judge=judge)
    if concurrency or rpm or tpm:
        spec.models = [replace(m, concurrency=concurrency or m.concurrency, rpm=rpm or m.rpm, tpm=tpm or m.tpm)
                       for m in spec.models]
    return spec


def run(spec_path: Path | str, *, models: Sequence[str] | None = None, samples: int | None = None,
        limit: int | None = None, out: Path | str = "reports", fresh: bool = False, max_cost: float | None = None,
        retries: int | None = None, retry_delay: float | None = None, concurrency: int | None = None,
        rpm: float | None = None, tpm: float | None = None, figures: bool = True, csv: bool = False,
        batch: bool = False, workers: int | None = None, judge: str | None = None,
        warn: Callable[[str], None] = _stderr) -> Run:
    """Run a spec: ask every job not already in the store, label the answers, write the report.

    `models` replaces the spec's models (litellm model strings); `samples` and `limit` (first N
    items) override the spec; `concurrency`, `rpm` and `tpm` override every model's limits; `judge` (MODEL[@ADDRESS],
    or a model's name) replaces the spec's `judge:`, the model a reader that names none asks; `retries` and
    `retry_delay` default to sendpath.RetryPolicy's;
    `max_cost` (USD) stops sending new requests once spent. `batch` sends what a provider can batch through
    its batch API, at batch prices (see the batches package). `workers` sender processes send the requests to
    remote models (0: this process sends them; None: as many as the concurrency needs, see evalrun.workers).
    Warnings go to `warn` (stderr).
    """
    from .dataset import load_dataset
    from .design import Design
    from .sendpath import DEFAULT_RETRIES, DEFAULT_RETRY_DELAY
    from .spec import DEFAULT_SEED, check_columns, load_spec
    from .spec.sending import token_budget_problems
    from .stages import SecondStage

    retries = DEFAULT_RETRIES if retries is None else retries
    retry_delay = DEFAULT_RETRY_DELAY if retry_delay is None else retry_delay
    _check_values(samples, limit, max_cost, retries, retry_delay, workers)
    spec_path = Path(spec_path)
    spec = _configure(load_spec(spec_path), models, samples, concurrency, rpm, tpm, judge)
    if problems := token_budget_problems(spec):  # the spec's own were refused by load_spec; these follow --tpm
        raise ProblemsError(problems)
    for warning in spec.warnings:
        warn(warning.render())
    dataset = load_dataset(spec, limit=limit)
    problems = check_columns(spec, dataset.columns)
    for warning in (p for p in problems if p.severity == "warning"):
        warn(warning.render())
    if any(p.severity == "error" for p in problems):
        raise ProblemsError([p for p in problems if p.severity == "error"])
    design = Design(spec, dataset)
    design.check_renders()
    second = SecondStage(design)  # refuses a reader with no model to ask before anything is asked
    for model in spec.models:
        if model.api_key_env and not os.environ.get(model.api_key_env):
            warn(f"evalrun: warning: model '{model.name}': {model.api_key_env} is not set; "
                 "its jobs will be recorded as failed")

    from .progress import Display
    from .providers import check_models, prepare, priced
    from .record import ModelRecord, RunRecord
    from .redact import redact_params, redact_url
    from .reporting import READINGS, REQUESTS, RESULTS, write_report
    from .results import Results
    from .runner import Runner, Stopped
    from .sendpath import RetryPolicy, RunOptions
    from .spec import followup_variant
    from .store import home

    out = Path(out)
    check_models(spec.models)  # first: a missing model file is the user's to fix before any folder is made
    _writable(home(), "EVALRUN_HOME (the store and scratch files)")
    _writable(out, "the reports folder (--out)")
    if max_cost is not None:
        prepare(spec.models)  # a budget needs litellm's price list now (a spec's price is the model's own)
        named = {m.name for m in spec.models}
        # a judge of its own (not one of the run's models) spends from the same budget
        for model, what in [*((m, "model") for m in spec.models),
                            *((m, "judge") for m in second.readers if m.name not in named)]:
            if not priced(model):
                warn(f"evalrun: warning: {what} '{model.name}': litellm knows no price for {model.model}, so "
                     "--max-cost cannot stop its requests"
                     + (" (give it a `price` in the spec)" if what == "model" else ""))
    streams = {m.name: design.expand(only=m) for m in spec.models}
    batched: set[str] = set()  # models whose costs are batch prices: summary.json says so
    batches: BatchPath | None = None  # with --batch, the provider batch APIs take the models they can
    if batch:
        from .batches import batch_priced, batch_stage

        batched, batches = batch_priced(spec.models), batch_stage
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with Results(spec, dataset, scratch_parent=home() / "scratch") as results:
        store = _open_store()
        display = Display({m.name: design.count(m) for m in spec.models})
        t0 = time.perf_counter()
        try:
            options = RunOptions(fresh=fresh, max_cost=max_cost,
                                 retry=RetryPolicy(attempts=retries + 1, base=retry_delay), workers=workers)
            # the results read (label) each outcome as it arrives; the display only shows progress
            runner = Runner(store, options, display, read=results.add, batches=batches)
            asyncio.run(_stages(runner, design, second, results, streams, display))
            unreachable = runner.unreachable
            results.finalize()
        except (KeyboardInterrupt, Stopped):
            display.close()
            raise Interrupted(sum(t.done for t in display.tallies.values()), design.count(), store.path) from None
        finally:
            store.close()
        display.close()
        duration = time.perf_counter() - t0

        base_id = run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + spec.sha256[:6]
        run_dir = out / spec.name / run_id
        suffix = 1
        while run_dir.exists():  # a rerun within the same second must not overwrite the earlier report
            suffix += 1
            run_id = f"{base_id}-{suffix}"
            run_dir = out / spec.name / run_id
        try:
            run_dir.mkdir(parents=True)
            results.write_parquet(run_dir / RESULTS)
            results.write_readings(run_dir / READINGS)
            results.write_requests(run_dir / REQUESTS)
        except OSError as exc:  # e.g. the disk filled during the run; writability was checked before it
            raise EvalrunError(f"{run_dir}: cannot write the results: {exc.strerror or exc}; every answer is in "
                               f"{store.path}, so the same command run again writes them without asking") from None
    # a follow-up is read as a variant of its own, compared with the answers it follows
    variants = [*spec.variants, *(followup_variant(name) for name in second.followups)]
    compare = [*(list(p) for p in spec.compare),  # a pair the spec names already is not compared twice
               *([name, followup_variant(name)] for name in second.followups
                 if {name, followup_variant(name)} not in [set(p) for p in spec.compare])]
    readers = {name: list(v.readers) for name, v in spec.variants.items() if v.readers}
    described = design.describe()
    record = RunRecord(
        name=spec.name, description=spec.description, run_id=run_id, spec_path=str(spec_path),
        spec_sha256=spec.sha256, dataset_source=dataset.source, dataset_sha256=dataset.sha256,
        items=len(dataset.items), labels=spec.labels, variants=variants, compare=compare,
        has_gold=dataset.gold_column is not None,
        # a model given up as unreachable says so (with the address that did not answer), so the report
        # can say it was unreachable rather than quote an accuracy of 0
        models=[ModelRecord(m.name, m.model, redact_url(m.api_base), unreachable=m.name in unreachable,
                            address=unreachable.get(m.name), batch_prices=m.name in batched, mode=m.mode)
                for m in spec.models],
        # validation refuses credentials in params; redacting here too keeps one out of summary.json and
        # report.md should a spec reach run() some other way
        samples=spec.samples, params=redact_params(spec.params),
        seed=spec.params.get("seed", DEFAULT_SEED),  # type: ignore[arg-type]
        started=started, duration_s=duration, versions=_versions(),
        # absent for a design without optional axes, so such a summary reads as release 0.1's
        design=described if described["axes"] else None,
        ordinal=bool(spec.ordinal), slices=spec.slices or None, readers=readers or None,
        judges=[ModelRecord(m.name, m.model, redact_url(m.api_base)) for m in second.readers] or None,
        predicts={name: v.predicts for name, v in spec.variants.items() if v.predicts} or None,
        variant_labels=spec.variant_labels(),
        stated=[{"stated": s.stated, "behaviour": s.behaviour, "measure": s.measure, "yes": s.yes}
                for s in spec.stated] or None,
        variant_modes={name: v.mode for name, v in spec.variants.items() if v.mode} or None)
    try:
        return Run(run_dir, write_report(run_dir, record, figures=figures, csv=csv))
    except OSError as exc:
        raise EvalrunError(f"{run_dir}: cannot write the report: {exc.strerror or exc}; `evalrun report "
                           f"{run_dir}` writes it again from results.parquet") from None


async def _stages(runner: Runner, design: Design, second: SecondStage, results: Results,
                  streams: dict[str, Iterator[Job]], display: Display) -> None:
    """The first answers, then the requests about them (follow-ups, asking readers), on one runner; a signal
    that would interrupt the run stops it, letting the requests in flight land (Runner.stop)."""
    with runner.stopped_by_signals():
        try:
            await runner.stage(streams, design.spec.models)
            totals = second.totals(results)
            if totals:
                display.expect(totals)
                await runner.stage(second.streams(results), second.models)
        finally:
            await runner.close()


def _open_store() -> Store:
    """The response store, or one line saying why it cannot be opened (read-only, not a database, locked)."""
    import sqlite3

    from .store import Store, home

    try:
        return Store()
    except (OSError, sqlite3.Error) as exc:
        raise EvalrunError(f"{home() / 'store.sqlite'}: cannot open the response store: {exc}") from None


def report(run_dir: Path | str, figures: bool = True, csv: bool = False) -> Path:
    """Re-render report.md and summary.json from a run folder's results.parquet, asking no model.

    A folder that is not a run's (a missing, truncated or hand-edited summary.json or results.parquet)
    raises EvalrunError naming the file, never a parser's traceback.
    """
    import polars as pl

    from .record import RunRecord
    from .reporting import RESULTS, write_report

    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    record = RunRecord.load(summary_path)
    try:
        write_report(run_dir, record, figures=figures, csv=csv)
    except pl.exceptions.PolarsError as exc:
        raise EvalrunError(f"{run_dir / RESULTS}: cannot read it: {short(exc, 300)}") from None
    except FileNotFoundError as exc:
        raise EvalrunError(f"{exc.filename or run_dir / RESULTS}: no such file") from None
    except OSError as exc:
        raise EvalrunError(f"{exc.filename or run_dir}: {exc.strerror or exc}") from None
    except (KeyError, TypeError, ValueError) as exc:  # the design's levels (JSON, not typed) lack or garble a key
        raise EvalrunError(f"{summary_path}: not a run's summary: {_missing(exc)}") from None
    return run_dir / "report.md"


def _missing(exc: Exception) -> str:
    return f"no {exc.args[0]!r} key" if isinstance(exc, KeyError) else " ".join(str(exc).split())


def compare(run_dirs: Sequence[Path | str], out: Path | str | None = None) -> Path:
    """compare.md (with figures) comparing each run with the first, over the items they share;
    returns its path. `out` defaults to a folder beside the first run."""
    from .reporting.compare import compare_runs

    dirs = [Path(d) for d in run_dirs]
    if out is None:
        out = dirs[0].parent / ("compare-" + "-vs-".join(d.name for d in reversed(dirs)))
    return compare_runs(dirs, Path(out))


def plan(run_dir: Path | str | None = None, *, width: float = 0.1, power: float = 0.8, alpha: float = 0.05,
         difference: float | None = None, agreement: float | None = None, kappa: float | None = None,
         prevalence: float | None = None, discordance: float | None = None, items: int | None = None) -> Plan:
    """Plan the next run from a run folder's summary.json, or from assumptions: items needed for a
    `width`-wide interval on agreement, kappa and paired rate differences, items for `power` to detect
    `difference` with McNemar's exact test, and the smallest difference the run could have detected.
    See `evalrun.planning.plan`; the maths, with its sources, is in `evalrun.stats.power`."""
    from .planning import plan as make_plan

    return make_plan(run_dir, width=width, power=power, alpha=alpha, difference=difference, agreement=agreement,
                     kappa=kappa, prevalence=prevalence, discordance=discordance, items=items)

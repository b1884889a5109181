"""The command line: the only place where the stages are wired together.

    evalrun SPEC                 same as `evalrun run SPEC`
    evalrun run SPEC [options]   ask the models, write reports/<name>/<run-id>/
    evalrun validate SPEC...     check specs and their datasets without asking anything
    evalrun report RUN_DIR       re-render report.md and summary.json from stored results

Exit status: 0 success; 1 the run finished but more than --max-errors (default 0.1,
a share of all jobs) failed for good; 2 bad input (spec, dataset, environment);
130 interrupted (Ctrl-C: everything received is in the store, and running the same
command again resumes).

Answers are kept in $EVALRUN_HOME/store.sqlite (default ~/.evalrun/store.sqlite); a rerun
asks only for jobs that have no stored answer, `--fresh` asks everything again.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .errors import EvalrunError, Problem, ProblemsError

COMMANDS = ("run", "validate", "report")
DEFAULT_MAX_ERRORS = 0.1
# duplicated from runner.py so that `evalrun --help` need not import the runner (and aiolimiter)
DEFAULT_RETRIES = 5
DEFAULT_RETRY_DELAY = 1.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evalrun", description="Behavioural experiments on language models: "
                                     "does a model do what it says?")
    parser.add_argument("--version", action="version", version=f"evalrun {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a spec and write its report (the default command)")
    run.add_argument("spec", type=Path, help="the eval spec (YAML)")
    run.add_argument("--model", action="append", metavar="MODEL",
                     help="litellm model string; repeatable; replaces the spec's models")
    run.add_argument("--samples", type=int, metavar="N", help="samples per item x variant x model")
    run.add_argument("--limit", type=int, metavar="N", help="use only the first N items")
    run.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR",
                     help="reports folder (default: reports); the run goes to DIR/<name>/<run-id>/")
    run.add_argument("--fresh", action="store_true", help="ask again even for answers already in the store")
    run.add_argument("--max-cost", type=float, metavar="USD",
                     help="stop sending new requests once this is spent (answers of unknown price count as 0)")
    run.add_argument("--max-errors", type=float, default=DEFAULT_MAX_ERRORS, metavar="SHARE",
                     help=f"exit 1 if more than this share of jobs failed (default {DEFAULT_MAX_ERRORS})")
    run.add_argument("--retries", type=int, default=DEFAULT_RETRIES, metavar="N",
                     help=f"retries of a request after 429, 5xx, timeout or connection errors "
                          f"(default {DEFAULT_RETRIES})")
    run.add_argument("--retry-delay", type=float, default=DEFAULT_RETRY_DELAY, metavar="SECONDS",
                     help=f"first backoff (doubling, jittered, at most 60 s; a longer Retry-After wins) "
                          f"(default {DEFAULT_RETRY_DELAY})")
    run.add_argument("--concurrency", type=int, metavar="N", help="requests in flight per model (overrides spec)")
    run.add_argument("--rpm", type=float, metavar="N", help="requests per minute per model (overrides spec)")
    run.add_argument("--tpm", type=float, metavar="N",
                     help="tokens per minute per model, prompt + completion (overrides spec)")

    val = sub.add_parser("validate", help="check specs (and their datasets) without asking any model")
    val.add_argument("specs", nargs="+", help="spec files or glob patterns")
    val.add_argument("--format", choices=("text", "json"), default="text")

    rep = sub.add_parser("report", help="re-render a run's report from its results.parquet")
    rep.add_argument("run_dir", type=Path)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    # polars allocates through jemalloc, which by default holds freed pages for ~10 s: the report's
    # buffers would then stack on the request loop's instead of reusing them (bench/README.md).
    # Read when polars loads, so it must be set before the first import of polars; a user's own wins.
    os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
    args_in = list(sys.argv[1:] if argv is None else argv)
    # `evalrun SPEC` is short for `evalrun run SPEC`
    first = next((a for a in args_in if a != "--debug"), None)
    if first is not None and not first.startswith("-") and first not in COMMANDS:
        args_in.insert(args_in.index(first), "run")
    parser = _parser()
    args = parser.parse_args(args_in)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "validate":
            return _validate(args)
        if args.command == "report":
            from .report import rerender

            print(rerender(args.run_dir))
            return 0
        return _run(args)
    except ProblemsError as exc:
        if args.debug:
            raise
        for problem in exc.problems:
            print(problem.render(), file=sys.stderr)
        return 2
    except (EvalrunError, FileNotFoundError) as exc:
        if args.debug:
            raise
        print(f"evalrun: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("evalrun: interrupted", file=sys.stderr)
        return 130


def _expand_paths(patterns: list[str]) -> list[Path]:
    """Files named or matched, each once; a pattern matching nothing is kept, so it is reported as missing."""
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else []
        paths.extend(Path(m) for m in matches or [pattern])
    return list(dict.fromkeys(paths))


def check(path: Path) -> list[Problem]:
    """Every problem of one spec and its dataset (what `validate` reports and `run` refuses), in reading order."""
    from .dataset import load_dataset
    from .errors import in_order
    from .spec import check_columns, load_spec

    try:
        spec = load_spec(path)
    except ProblemsError as exc:
        return in_order(exc.problems, str(path))
    try:
        dataset = load_dataset(spec)
    except ProblemsError as exc:
        return in_order(spec.warnings + exc.problems, str(path))
    return in_order(spec.warnings + check_columns(spec, dataset.columns), str(path))


def _validate(args: argparse.Namespace) -> int:
    paths = _expand_paths(args.specs)
    results = {str(p): check(p) for p in paths}
    errors = sum(p.severity == "error" for ps in results.values() for p in ps)
    warnings = sum(p.severity == "warning" for ps in results.values() for p in ps)
    invalid = sum(any(p.severity == "error" for p in ps) for ps in results.values())
    if args.format == "json":
        print(json.dumps({"files": [{"file": f, "valid": not any(p.severity == "error" for p in ps),
                                     "problems": [p.as_dict() for p in ps]} for f, ps in results.items()],
                          "errors": errors, "warnings": warnings}, indent=2))
    else:
        for problems in results.values():  # problems, warnings too, go to stderr; the summary to stdout
            for problem in problems:
                print(problem.render(), file=sys.stderr)

        def n(count: int, word: str) -> str:
            return f"{count} {word}" + ("" if count == 1 else "s")

        print(f"{n(len(paths), 'file')} checked: {len(paths) - invalid} valid, {invalid} invalid "
              f"({n(errors, 'error')}, {n(warnings, 'warning')})")
    return 2 if invalid or not paths else 0


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


def _run(args: argparse.Namespace) -> int:
    import asyncio
    from dataclasses import replace

    from .dataset import load_dataset
    from .jobs import expand, messages_for
    from .spec import DEFAULT_SEED, check_columns, load_spec

    if args.retries < 0 or args.retry_delay < 0 or not 0 <= args.max_errors <= 1:
        raise EvalrunError("--retries and --retry-delay must be 0 or more, --max-errors between 0 and 1")
    if any(v is not None and v <= 0 for v in (args.concurrency, args.rpm, args.tpm)):
        raise EvalrunError("--concurrency, --rpm and --tpm must be more than 0")
    spec = load_spec(args.spec).with_overrides(models=args.model, samples=args.samples)
    if args.model and len(set(args.model)) < len(args.model):
        raise EvalrunError("--model: the same model is given twice")
    if args.concurrency or args.rpm or args.tpm:
        spec.models = [replace(m, concurrency=args.concurrency or m.concurrency, rpm=args.rpm or m.rpm,
                               tpm=args.tpm or m.tpm)
                       for m in spec.models]
    for warning in spec.warnings:
        print(warning.render(), file=sys.stderr)
    dataset = load_dataset(spec, limit=args.limit)
    problems = check_columns(spec, dataset.columns)
    if problems:
        raise ProblemsError(problems)
    for item in dataset.items:  # every prompt renders before the first request is sent
        for variant in spec.variants:
            messages_for(spec, variant, item, dataset.item_id(item))
    for model in spec.models:
        if model.api_key_env and not os.environ.get(model.api_key_env):
            print(f"evalrun: warning: model '{model.name}': {model.api_key_env} is not set; "
                  "its jobs will be recorded as failed", file=sys.stderr)

    from .progress import Display
    from .providers import prepare, priced
    from .report import RESULTS, write_report
    from .results import Results
    from .runner import RetryPolicy, RunOptions, run_jobs
    from .store import Store, home

    prepare(spec.models)
    if args.max_cost is not None:
        for model in spec.models:
            if not priced(model):
                print(f"evalrun: warning: model '{model.name}': litellm knows no price for {model.model}, so "
                      "--max-cost cannot stop its requests (give it a `price` in the spec)", file=sys.stderr)
    per_model = len(dataset.items) * len(spec.variants) * spec.samples
    streams = {m.name: expand(spec, dataset, only=m) for m in spec.models}
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with Results(spec, dataset, scratch_parent=home() / "scratch") as results:
        store = Store()
        display = Display({m.name: per_model for m in spec.models}, on_outcome=results.add)
        t0 = time.perf_counter()
        try:
            options = RunOptions(fresh=args.fresh, max_cost=args.max_cost,
                                 retry=RetryPolicy(attempts=args.retries + 1, base=args.retry_delay))
            asyncio.run(run_jobs(streams, spec.models, store, options, display))
        except KeyboardInterrupt:
            display.close()
            done = sum(t.done for t in display.tallies.values())
            print(f"evalrun: interrupted after {done} of {per_model * len(spec.models)} jobs; every answer "
                  f"received is in {store.path}. Run the same command again to resume.", file=sys.stderr)
            return 130
        finally:
            store.close()
        display.close()
        duration = time.perf_counter() - t0

        base_id = run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + spec.sha256[:6]
        run_dir = args.out / spec.name / run_id
        suffix = 1
        while run_dir.exists():  # a rerun within the same second must not overwrite the earlier report
            suffix += 1
            run_id = f"{base_id}-{suffix}"
            run_dir = args.out / spec.name / run_id
        run_dir.mkdir(parents=True)
        results.write_parquet(run_dir / RESULTS)
    meta: dict[str, Any] = {
        "name": spec.name, "description": spec.description, "run_id": run_id,
        "spec_path": str(args.spec), "spec_sha256": spec.sha256,
        "dataset_source": dataset.source, "dataset_sha256": dataset.sha256, "items": len(dataset.items),
        "labels": spec.labels, "variants": list(spec.variants), "compare": [list(p) for p in spec.compare],
        "has_gold": dataset.gold_column is not None,
        "models": [{"name": m.name, "model": m.model, "api_base": m.api_base} for m in spec.models],
        "samples": spec.samples, "params": spec.params, "seed": spec.params.get("seed", DEFAULT_SEED),
        "started": started, "duration_s": duration, "versions": _versions(),
    }
    totals = write_report(run_dir, meta)["totals"]
    print(run_dir / "report.md")
    if totals["jobs"] and totals["failed"] / totals["jobs"] > args.max_errors:
        print(f"evalrun: {totals['failed']} of {totals['jobs']} jobs failed (more than --max-errors "
              f"{args.max_errors}); see the report's failed jobs", file=sys.stderr)
        return 1
    return 0

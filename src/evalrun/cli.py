"""The command line: parses arguments and calls the Python API (api.py), which wires the stages.

    evalrun SPEC                 same as `evalrun run SPEC`
    evalrun run SPEC [options]   ask the models, write reports/<name>/<run-id>/
    evalrun validate SPEC...     check specs and their datasets without asking anything
    evalrun report RUN_DIR       re-render report.md and summary.json from stored results
    evalrun compare RUN_DIR...   compare runs of one spec item by item (the first is the baseline)
    evalrun plan [RUN_DIR]       items the next run needs for a target interval width or 80% power
    evalrun render SPEC          print the exact requests a spec would send, asking no model
    evalrun new NAME             write a starting spec and dataset (evals/NAME.yaml)
    evalrun view RUN_DIR         browse a run's answers in the browser (--static FILE: one HTML file)
    evalrun annotate RUN_DIR     label a sample of a run's answers by hand, to measure its readers
    evalrun export RUN_DIR       write a run in a format other tools read (--format inspect: Inspect AI logs)

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
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .errors import EvalrunError, Interrupted, ProblemsError

COMMANDS = ("run", "validate", "report", "compare", "plan", "render", "new", "view", "annotate", "export")
DEFAULT_MAX_ERRORS = 0.1


def _parser() -> argparse.ArgumentParser:
    # the send path's own defaults, shown in --help (sendpath imports no provider library: litellm stays unloaded)
    from .sendpath import DEFAULT_RETRIES, DEFAULT_RETRY_DELAY

    parser = argparse.ArgumentParser(prog="evalrun", description="Behavioural experiments on language models: "
                                     "does a model do what it says?")
    parser.add_argument("--version", action="version", version=f"evalrun {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a spec and write its report (the default command)")
    run.add_argument("spec", type=Path, help="the eval spec (YAML)")
    run.add_argument("--model", action="append", metavar="MODEL",
                     help="litellm model string, or the name of one of the spec's models (its entry kept "
                          "whole); repeatable; replaces the spec's models")
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
    run.add_argument("--judge", metavar="MODEL[@ADDRESS]",
                     help="the model a reader that names none asks (a judge without `model:`); replaces the "
                          "spec's `judge:`; needed when none of the run's models is embedded")
    run.add_argument("--concurrency", type=int, metavar="N", help="requests in flight per model (overrides spec)")
    run.add_argument("--rpm", type=float, metavar="N", help="requests per minute per model (overrides spec)")
    run.add_argument("--tpm", type=float, metavar="N",
                     help="tokens per minute per model, prompt + completion (overrides spec)")
    run.add_argument("--workers", type=int, metavar="N",
                     help="processes sending requests to remote models (0: send from this process; default: "
                          "one per 50 requests in flight, at most one per CPU, none below two, busy CPUs "
                          "included: senders win there too, see evalrun.workers.senders_for)")

    val = sub.add_parser("validate", help="check specs (and their datasets) without asking any model")
    val.add_argument("specs", nargs="+", help="spec files or glob patterns")
    val.add_argument("--format", choices=("text", "json"), default="text")

    run.add_argument("--no-figures", action="store_true", help="write report.md without PNG figures")
    run.add_argument("--csv", action="store_true", help="also write results.csv beside results.parquet")
    run.add_argument("--batch", action="store_true",
                     help="send OpenAI models' requests through its batch API (half price, answers within 24 h); "
                          "a rerun collects batches already submitted")

    cmp = sub.add_parser("compare", help="compare runs of the same spec (the first is the baseline)")
    cmp.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    cmp.add_argument("--out", type=Path, metavar="DIR", help="where compare.md goes (default: beside the first run)")

    pln = sub.add_parser("plan", help="items the next run needs for a target interval width or 80%% power, and "
                                      "the smallest difference a run could have detected")
    pln.add_argument("run_dir", type=Path, nargs="?", metavar="RUN_DIR",
                     help="a finished run's folder (its estimates are assumed); without it, give assumptions")
    pln.add_argument("--width", type=float, default=0.1, metavar="W",
                     help="target full width of the 95%% interval, as a share (default 0.1: 10 points)")
    pln.add_argument("--power", type=float, default=0.8, metavar="P", help="power for McNemar's test (default 0.8)")
    pln.add_argument("--alpha", type=float, default=0.05, metavar="A",
                     help="two-sided level of tests and intervals (default 0.05)")
    pln.add_argument("--difference", type=float, metavar="D",
                     help="paired rate difference to detect (default: the one the run observed)")
    pln.add_argument("--agreement", type=float, metavar="P", help="assume this percent agreement (a share)")
    pln.add_argument("--kappa", type=float, metavar="K", help="assume this kappa (with --prevalence)")
    pln.add_argument("--prevalence", type=float, metavar="P", help="rate of the label both raters give, for --kappa")
    pln.add_argument("--discordance", type=float, metavar="PSI",
                     help="assume this share of items on which a pair differs (for a paired difference)")
    pln.add_argument("--items", type=int, metavar="N",
                     help="with --discordance: the smallest difference N items detect")
    pln.add_argument("--json", action="store_true", help="print the plan as JSON")

    ren = sub.add_parser("render", help="print the exact requests a spec would send, asking no model")
    ren.add_argument("spec", type=Path)
    ren.add_argument("--item", action="append", metavar="ID", help="this item (repeatable; default: the first 3)")
    ren.add_argument("--variant", action="append", metavar="NAME", help="this variant (repeatable; default: all)")
    ren.add_argument("--json", action="store_true", help="one JSON object per request")

    new = sub.add_parser("new", help="write a starting spec and dataset that validate and run")
    new.add_argument("name", help="names the spec (evals/NAME.yaml), its dataset and its report folder")
    new.add_argument("--dir", type=Path, default=Path("evals"), help="where the spec goes (default: evals)")

    rep = sub.add_parser("report", help="re-render a run's report from its results.parquet")
    rep.add_argument("run_dir", type=Path)
    rep.add_argument("--no-figures", action="store_true", help="write report.md without PNG figures")
    rep.add_argument("--csv", action="store_true", help="also write results.csv beside results.parquet")

    vw = sub.add_parser("view", help="browse a run's answers, variants side by side, in the browser")
    vw.add_argument("run_dir", type=Path)
    vw.add_argument("--static", type=Path, metavar="FILE", help="write one self-contained HTML file instead")
    vw.add_argument("--no-browser", action="store_true", help="print the address without opening a browser")
    vw.add_argument("--who", metavar="NAME", help="who labels answers in the page (default: the user logged in)")
    ann = sub.add_parser("annotate", help="label a sample of a run's answers by hand (the report measures the "
                                          "readers against them)")
    ann.add_argument("run_dir", type=Path)
    ann.add_argument("--sample", type=int, default=30, metavar="N", help="answers to label (default 30)")
    ann.add_argument("--seed", type=int, default=0, metavar="S", help="draws the sample (default 0)")
    ann.add_argument("--who", metavar="NAME", help="who labels (default: the user logged in)")
    exp = sub.add_parser("export", help="write a run in a format other tools read")
    exp.add_argument("run_dir", type=Path)
    # not argparse choices: an unknown format is one `evalrun: error:` line like every other bad input
    exp.add_argument("--format", required=True, metavar="FORMAT",
                     help="inspect: Inspect AI eval logs, one per model (eee: not yet)")
    exp.add_argument("--out", type=Path, metavar="DIR", help="where the files go (default: RUN_DIR/<format>)")
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
    # `kill`, a CI runner's timeout and container stops send SIGTERM: stop as Ctrl-C does, so the run
    # says what is in the store and how to resume instead of vanishing. Signals reach the main thread only.
    restore = None
    if threading.current_thread() is threading.main_thread():
        restore = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _dispatch(args)
    finally:
        if restore is not None:
            signal.signal(signal.SIGTERM, restore)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _dispatch(args: argparse.Namespace) -> int:
    try:
        if args.command == "validate":
            return _validate(args)
        if args.command == "report":
            from .api import report

            print(report(args.run_dir, figures=not args.no_figures, csv=args.csv))
            return 0
        if args.command == "render":
            return _render(args)
        if args.command == "new":
            from .authoring import new as write_new

            for path in write_new(args.name, args.dir):
                print(path)
            return 0
        if args.command == "compare":
            from .api import compare

            print(compare(args.run_dirs, args.out))
            return 0
        if args.command == "plan":
            return _plan(args)
        if args.command == "view":
            from .view import open_view

            return open_view(args.run_dir, static=args.static, browser=not args.no_browser, who=args.who)
        if args.command == "annotate":
            from .annotate import annotate

            annotate(args.run_dir, args.sample, args.seed, args.who, _ask, print)
            return 0
        if args.command == "export":
            from .export import export

            print(*export(args.run_dir, args.format, args.out), sep="\n")
            return 0
        return _run(args)
    except Interrupted as exc:
        print(f"evalrun: {exc}", file=sys.stderr)
        return 130
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


def _ask(prompt: str) -> str | None:
    """A line from the terminal or a pipe; None once the input has ended."""
    try:
        return input(prompt)
    except EOFError:
        return None


def _expand_paths(patterns: list[str]) -> list[Path]:
    """Files named or matched, each once; a pattern matching nothing is kept, so it is reported as missing."""
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else []
        paths.extend(Path(m) for m in matches or [pattern])
    return list(dict.fromkeys(paths))


def _validate(args: argparse.Namespace) -> int:
    paths = _expand_paths(args.specs)
    from .api import check

    results = {str(p): check(p) for p in paths}
    errors = sum(p.severity == "error" for ps in results.values() for p in ps)
    warnings = sum(p.severity == "warning" for ps in results.values() for p in ps)
    invalid = sum(any(p.severity == "error" for p in ps) for ps in results.values())
    if args.format == "json":
        print(json.dumps({"files": [{"file": f, "valid": not any(p.severity == "error" for p in ps),
                                     "problems": [p.as_dict() for p in ps]} for f, ps in results.items()],
                          "errors": errors, "warnings": warnings}, indent=2))
    else:
        for problems in results.values():  # problems and warnings, then the summary line, all on stderr
            for problem in problems:
                print(problem.render(), file=sys.stderr)

        def n(count: int, word: str) -> str:
            return f"{count} {word}" + ("" if count == 1 else "s")

        # with the problems, on stderr: two streams interleave out of order in a terminal or a log
        print(f"{n(len(paths), 'file')} checked: {len(paths) - invalid} valid, {invalid} invalid "
              f"({n(errors, 'error')}, {n(warnings, 'warning')})", file=sys.stderr)
    return 2 if invalid or not paths else 0


def _render(args: argparse.Namespace) -> int:
    from .authoring import render

    for request in render(args.spec, args.item, args.variant):
        if args.json:
            print(json.dumps(request, ensure_ascii=False))
            continue
        where = request["model"] + (f" at {request['api_base']}" if request["api_base"] else "")
        print(f"=== {request['job_id']}  ({where}; {json.dumps(request['params'], sort_keys=True)})")
        for message in request["messages"]:  # type: ignore[attr-defined]
            print(f"--- {message['role']}\n{message['content']}")
        for reader, reads in request["readers"].items():  # type: ignore[attr-defined]
            print(f"--- reader {reader} reads with {reads}")
        print()
    return 0


def _plan(args: argparse.Namespace) -> int:
    from .api import plan
    from .planning import render

    result = plan(args.run_dir, width=args.width, power=args.power, alpha=args.alpha, difference=args.difference,
                  agreement=args.agreement, kappa=args.kappa, prevalence=args.prevalence,
                  discordance=args.discordance, items=args.items)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        render(result)
    return 0


def _run(args: argparse.Namespace) -> int:
    from .api import run

    if not 0 <= args.max_errors <= 1:
        raise EvalrunError("--max-errors must be between 0 and 1")
    done = run(args.spec, models=args.model, samples=args.samples, limit=args.limit, out=args.out, fresh=args.fresh,
               max_cost=args.max_cost, retries=args.retries, retry_delay=args.retry_delay,
               concurrency=args.concurrency, rpm=args.rpm, tpm=args.tpm, figures=not args.no_figures, csv=args.csv,
               batch=args.batch, workers=args.workers, judge=args.judge)
    print(done.report_path)
    totals = done.summary["totals"]
    if done.failed_share > args.max_errors:
        print(f"evalrun: {totals['failed']} of {totals['jobs']} jobs failed (more than --max-errors "
              f"{args.max_errors}); see the report's failed jobs", file=sys.stderr)
        return 1
    return 0

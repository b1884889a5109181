"""Issue 14, the run: every failure a user can cause ends in one line and exit 2 before a request is sent,
an unreachable model is given up in seconds, a request too large for its tpm fails instead of waiting
forever, and SIGTERM stops a run as Ctrl-C does. Servers are loopback servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest

from evalrun import api
from evalrun.cli import main
from evalrun.spec import checks

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import ApiKey, SpecWriter


@pytest.fixture
def server(loopback: Callable[..., LoopbackServer]) -> LoopbackServer:
    return loopback(default_reply="sure")


def parts(write_spec: SpecWriter, models: list[tuple[str, str]], items: int = 3,
          params: dict[str, Any] | None = None) -> dict[str, Any]:
    """conftest's write_spec's parts for a two-variant spec over `items` inline items; `models` are (name, api_base)."""
    return {"name": "hard", "inline": True, "items": [{"id": f"i{n:02d}", "text": f"text {n}"} for n in range(items)],
            "labels": ["agree", "refuse"], "variants": {"a": "A <{{ id }}> {{ text }}", "b": "B <{{ id }}> {{ text }}"},
            "extract": {"type": "choice", "choices": {"agree": ["sure"], "refuse": ["never"]}},
            "params": params or {"max_tokens": 5},
            "models": [write_spec.model(base, name=name, timeout=10) for name, base in models]}


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["run", *args])
    out, err = capsys.readouterr()
    return code, out, err


def closed_port() -> int:
    """A port nothing listens on: bound, read, closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- 1. unwritable folders: refused before any request -------------------------------------------------

def _unprivileged() -> list[str]:
    """A command prefix under which a chmod'ed folder is really read-only: root writes anywhere, nobody does not.
    (setpriv rather than subprocess's `user=`: the interpreter may live under root's home, which setpriv can
    still reach while nobody cannot write.)"""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: no way to make a folder read-only")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.mark.parametrize("read_only", ["home", "out"])
def test_a_read_only_home_or_out_is_one_line_before_any_request(read_only: str, server: LoopbackServer,
                                                               write_spec: SpecWriter) -> None:
    folder = Path(tempfile.mkdtemp(prefix="evalrun-ro-"))  # not under pytest's 0700 tmp: nobody must read it
    try:
        folder.chmod(0o755)
        spec = write_spec(folder, **parts(write_spec, [("loop", server.base_url)]))
        spec.chmod(0o644)
        home, out = folder / "home", folder / "reports"
        locked = home if read_only == "home" else out
        for target in (home, out):
            target.mkdir()
            target.chmod(0o555 if target == locked else 0o777)
        env = {**os.environ, "EVALRUN_HOME": str(home), "HOME": str(folder),
               "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        done = subprocess.run([*_unprivileged(), sys.executable, "-m", "evalrun", "run", str(spec), "--out", str(out)],
                              env=env, capture_output=True, text=True, timeout=120, cwd=folder)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("evalrun: error: "), done.stderr
        assert lines[0].startswith(f"evalrun: error: {locked}: ") and "cannot be written" in lines[0]
        assert server.requests == []  # refused before a single request was paid for
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_an_out_that_is_a_file_is_one_line_before_any_request(tmp_path: Path, server: LoopbackServer,
                                                               capsys: pytest.CaptureFixture[str],
                                                               write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, **parts(write_spec, [("loop", server.base_url)]))
    (tmp_path / "taken").write_text("a file, not a folder\n", encoding="utf-8")
    code, out, err = run_cli(capsys, str(spec), "--out", str(tmp_path / "taken" / "reports"))
    assert code == 2 and out == ""
    assert err.startswith(f"evalrun: error: {tmp_path / 'taken' / 'reports'}: the reports folder (--out) cannot "
                          "be written") and err.count("\n") == 1
    assert server.requests == []


# ---- 2. a seed too large for a 64-bit column ---------------------------------------------------------

def test_a_huge_seed_is_refused_at_validation_and_the_run_never_starts(
        tmp_path: Path, server: LoopbackServer, capsys: pytest.CaptureFixture[str], write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, **parts(write_spec, [("loop", server.base_url)],
                                        params={"max_tokens": 5, "seed": 99999999999999999999999}))
    code, out, err = run_cli(capsys, str(spec), "--out", str(tmp_path / "reports"))
    assert code == 2 and out == ""
    assert err == (f"{spec}:{write_spec.where(spec, '99999999999999999999999')}: error: params.seed: "
                   "must be at most 9007199254739991, "
                   "got 99999999999999999999999\n")
    assert server.requests == [] and not (tmp_path / "reports").exists()


def test_the_largest_seed_runs_and_is_stored(tmp_path: Path, server: LoopbackServer,
                                             capsys: pytest.CaptureFixture[str], write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, **parts(write_spec, [("loop", server.base_url)], items=1,
                                        params={"max_tokens": 5, "seed": 9007199254739991}))
    code, _, err = run_cli(capsys, str(spec), "--out", str(tmp_path / "reports"), "--samples", "3")
    assert code == 0, err
    seeds = sorted(b["seed"] for b in server.requests)
    assert seeds == [9007199254739991, 9007199254739991, 9007199254739992, 9007199254739992,
                     9007199254739993, 9007199254739993]


# ---- 3. credentials: refused in the spec; redacted should one reach a run anyway ------------------------

def test_validation_of_credentials_does_not_import_litellm(tmp_path: Path, write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, **parts(write_spec, [("loop", "http://127.0.0.1:1/v1")],
                                        params={"max_tokens": 5, "api_key": "sk-abcdefghijklmnopqrstu"}))
    code = ("import sys; from evalrun.api import check; "
            f"problems = check({str(spec)!r}); "
            "assert [p.message.split(':')[0] for p in problems] == ['params.api_key'], problems; "
            "assert 'litellm' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_credential_that_reaches_a_run_is_redacted_in_summary_report_and_store(
        tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, evalrun_home: Path,
        write_spec: SpecWriter, api_key: ApiKey) -> None:
    # the second guard: with validation's refusal switched off, nothing written may hold the key
    monkeypatch.setattr(checks, "credential_problems", lambda spec: [])
    headers = {"extra_headers": {"X-Api-Key": api_key.secret}, "api_key": api_key.secret, "max_tokens": 5}
    spec = write_spec(tmp_path, **parts(write_spec, [("loop", server.base_url)], items=2, params=headers))
    run = api.run(spec, out=tmp_path / "reports", warn=lambda _: None)
    assert run.summary["run"]["params"]["api_key"] == "[REDACTED]"
    written = [run.dir / "summary.json", run.dir / "report.md", evalrun_home / "store.sqlite"]
    for path in written:
        assert api_key.secret.encode() not in path.read_bytes(), path
    assert all(api_key.secret not in str(row) for row in run.results.iter_rows())


# ---- 5. command-line values ----------------------------------------------------------------------------

@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--samples", "-1", "--samples must be between 1 and 1,000, not -1"),
    ("--samples", "0", "--samples must be between 1 and 1,000, not 0"),
    ("--samples", "100000", "--samples must be between 1 and 1,000, not 100000"),
    ("--limit", "-1", "--limit must be 1 or more (the first N items), not -1"),
    ("--limit", "0", "--limit must be 1 or more (the first N items), not 0"),
    ("--max-cost", "-1", "--max-cost must be 0 or more (USD), not -1"),
    ("--max-cost", "nan", "--max-cost must be 0 or more (USD), not nan"),
])
def test_command_line_values_out_of_range_are_one_line_before_anything_runs(
        flag: str, value: str, message: str, tmp_path: Path, server: LoopbackServer,
        capsys: pytest.CaptureFixture[str], write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, **parts(write_spec, [("loop", server.base_url)]))
    code, out, err = run_cli(capsys, str(spec), "--out", str(tmp_path / "reports"), flag, value)
    assert (code, out, err) == (2, "", f"evalrun: error: {message}\n")
    assert server.requests == [] and not (tmp_path / "reports").exists()


# ---- 6. nothing answers ----------------------------------------------------------------------------------

def test_an_unreachable_model_is_given_up_in_seconds_and_the_others_keep_running(
        tmp_path: Path, server: LoopbackServer, capsys: pytest.CaptureFixture[str], write_spec: SpecWriter) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    spec = write_spec(tmp_path, **parts(write_spec, [("dead", dead), ("live", server.base_url)], items=48))
    # the default retries (5, from 1 s doubling): release 0.1 took 203 s for the dead model's 96 jobs, all sent;
    # how long giving up takes is measured by bench/unreachable.py
    code, out, err = run_cli(capsys, str(spec), "--out", str(tmp_path / "reports"))
    assert code == 1  # half the jobs failed, more than --max-errors
    given_up = [line for line in err.splitlines() if "unreachable" in line]
    assert len(given_up) == 1, err
    # five in a row, one a retry: the first round of the 8 workers' requests, then a retry failing again
    assert re.match(f"evalrun: model 'dead' is unreachable at {re.escape(dead)}: ([5-9]|1[0-6]) connection "
                    r"failures in a row \(Connection error \(.*\): Connection refused\); its remaining jobs are "
                    r"recorded as failed \(Unreachable\), not sent$", given_up[0]), given_up[0]
    summary = json.loads((Path(out.strip()).parent / "summary.json").read_text(encoding="utf-8"))
    models = {m["name"]: m for m in summary["run"]["models"]}
    assert models["dead"]["unreachable"] is True and models["dead"]["address"] == dead
    assert "unreachable" not in models["live"]
    results = pl.read_parquet(Path(out.strip()).parent / "results.parquet")
    dead_rows = results.filter(pl.col("model") == "dead")
    assert dead_rows.height == 96 and dead_rows["label"].is_null().all()
    unsent = dead_rows.filter(pl.col("error_class") == "Unreachable")
    assert unsent.height >= 96 - 8 * 2  # at most two rounds of the 8 workers' requests were tried
    assert unsent["error_message"].str.contains(f"unreachable at {dead}").all()
    live_rows = results.filter(pl.col("model") == "live")
    assert live_rows.height == 96 and live_rows["error_class"].is_null().all()


# ---- 7. a request larger than a minute's token budget --------------------------------------------------

def test_max_tokens_over_tpm_from_the_command_line_is_refused_before_the_run(
        tmp_path: Path, server: LoopbackServer, capsys: pytest.CaptureFixture[str], write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, **parts(write_spec, [("loop", server.base_url)], params={"max_tokens": 1000000000000}))
    code, out, err = run_cli(capsys, str(spec), "--out", str(tmp_path / "reports"), "--tpm", "60000")
    assert code == 2 and out == ""
    assert err == (f"{spec}:{write_spec.where(spec, '1000000000000')}: error: params.max_tokens: "
                   "1,000,000,000,000 is more than the tpm of model "
                   "'loop' (60,000), so one request would need more than a minute's token budget and the run would "
                   "wait for it forever (lower max_tokens, or raise the model's tpm)\n")
    assert server.requests == []


def test_a_prompt_over_tpm_fails_at_once_instead_of_waiting_forever(
        tmp_path: Path, server: LoopbackServer, evalrun_home: Path, write_spec: SpecWriter) -> None:
    # no max_tokens, and every prompt is longer than the 5 tokens a minute allows: release 0.1 waited forever
    spec = write_spec(tmp_path, **parts(write_spec, [("loop", server.base_url)], params={"temperature": 0}))
    env = {**os.environ, "EVALRUN_HOME": str(evalrun_home)}
    done = subprocess.run([sys.executable, "-m", "evalrun", "run", str(spec), "--out", str(tmp_path / "reports"),
                           "--tpm", "5"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # every job failed
    results = pl.read_parquet(Path(done.stdout.strip()).parent / "results.parquet")
    assert results["error_class"].to_list() == ["RequestTooLarge"] * 6
    assert results["error_message"].str.contains("is more than the tpm of model 'loop' \\(5\\)").all()
    assert server.requests == []


# ---- 8. SIGTERM ------------------------------------------------------------------------------------------

def test_sigterm_stops_a_run_like_ctrl_c_with_the_resume_message(tmp_path: Path, evalrun_home: Path,
                                                                 write_spec: SpecWriter) -> None:
    with LoopbackServer(default_reply="sure", latency=30.0) as slow:
        spec = write_spec(tmp_path, **parts(write_spec, [("slow", slow.base_url)]))
        env = {**os.environ, "EVALRUN_HOME": str(evalrun_home)}
        process = subprocess.Popen([sys.executable, "-m", "evalrun", "run", str(spec), "--out",
                                    str(tmp_path / "reports")], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not slow.requests and time.monotonic() < deadline:
                time.sleep(0.1)
            assert slow.requests, "the run never sent a request"
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (f"evalrun: interrupted after 0 of 6 jobs; every answer received is in "
                                            f"{evalrun_home / 'store.sqlite'}. Run the same command again to resume.")
    assert out == ""

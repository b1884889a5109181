"""Issue 24.6: credentials in a model's address (`http://user:PW@host`, `?api-key=`) reach no file of the run
folder, no byte of the store and no line the command prints.

Neither address form reaches the server's chat endpoint, and neither for a reason of evalrun's: litellm
(1.7x's default aiohttp transport) refuses a URL with user info beside the OpenAI SDK's own Authorization
header ("Cannot combine AUTHORIZATION header with AUTH argument or credentials encoded in URL", reported as
"Connection error."), and the OpenAI SDK appends `/chat/completions` to the whole base URL, query string
included, so `?api-key=K` becomes `?api-key=K/chat/completions` on the base path (a 404). So the requests
fail; what this checks is that the failures, as stored and reported, hold no credential.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from evalrun.cli import main

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import SpecWriter

PASSWORD = "PWuserinfoQ8xZ31"
QUERY_KEY = "SECRETqueryK4v9W7"


def test_credentials_in_an_address_are_in_no_file_and_no_output(
        tmp_path: Path, evalrun_home: Path, write_spec: SpecWriter, capsys: pytest.CaptureFixture[str],
        loopback: Callable[..., LoopbackServer]) -> None:
    server = loopback(default_reply="alpha")
    base = f"http://user:{PASSWORD}@127.0.0.1:{server.port}/v1"
    models = [write_spec.model(f"{base}?api-key={QUERY_KEY}", name="both", model="openai/x"),
              write_spec.model(base, name="userinfo", model="openai/y"),
              write_spec.model(f"{server.base_url}?api-key={QUERY_KEY}", name="query", model="openai/z")]
    spec = write_spec(tmp_path, models=models)
    code = main(["run", str(spec), "--out", str(tmp_path / "reports"), "--retries", "0"])
    out, err = capsys.readouterr()
    assert code == 1, err  # every job failed (see the module docstring), more than --max-errors
    run_dir = Path(out.strip().splitlines()[-1]).parent
    files = [run_dir / name for name in ("summary.json", "report.md", "results.parquet")]
    files += sorted(evalrun_home.glob("store.sqlite*"))  # the database, and its write-ahead log if any
    assert (run_dir / "summary.json").is_file() and (evalrun_home / "store.sqlite").is_file()
    for secret in (PASSWORD, QUERY_KEY):
        assert secret not in out and secret not in err, secret
        for path in files:
            assert secret.encode() not in path.read_bytes(), (secret, path)
    # the addresses are kept as far as they say where requests went
    summary = (run_dir / "summary.json").read_text(encoding="utf-8")
    assert f"http://127.0.0.1:{server.port}/v1?api-key=[REDACTED]" in summary

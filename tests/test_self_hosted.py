"""Issue 13 item 4: a self-hosted OpenAI-compatible server (vLLM, llama.cpp's server) named as
`hosted_vllm/NAME` or `openai/NAME` with `api_base`, at high concurrency: the server sees that many
requests at once, and every answer is stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from evalrun.cli import main
from evalrun.store import Store

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

if TYPE_CHECKING:
    from conftest import SpecWriter

CONCURRENCY = 200
ITEMS = CONCURRENCY  # x 2 variants: two rounds of CONCURRENCY per model, so a full window is reached and refilled
JOBS = 2 * ITEMS  # per model
LATENCY = 0.4  # long enough that one model's whole window is in flight before its first answer returns


# conftest's write_spec's parts: the second model sends a key, as llama.cpp's server (--api-key) expects
SPEC = {
    "name": "served", "filename": "served.yaml", "items": [{"id": f"i{i}", "text": f"item {i}"} for i in range(ITEMS)],
    "variants": {"ask": "Is {{ text }} a or b?", "say": "Say a or b for {{ text }}."},
    "extract": {"type": "choice", "choices": {"a": ["a"], "b": ["b"]}},
}


@pytest.mark.slow
def test_hosted_vllm_and_openai_with_api_base_at_high_concurrency(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        loopback: Callable[..., LoopbackServer], write_spec: SpecWriter) -> None:
    monkeypatch.setenv("EVALRUN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SELF_HOSTED_KEY", "local-server-key")  # llama.cpp's server takes --api-key
    server = loopback(default_reply="a", latency=LATENCY)
    models = [{"model": "hosted_vllm/served-vllm", "api_base": server.base_url, "concurrency": CONCURRENCY},
              {"model": "openai/served-llamacpp", "api_base": server.base_url, "api_key_env": "SELF_HOSTED_KEY",
               "concurrency": CONCURRENCY}]
    code = main(["run", str(write_spec(tmp_path, models=models, **SPEC)), "--out", str(tmp_path / "out")])
    requests = list(server.requests)
    out, err = capsys.readouterr()
    assert code == 0, err
    # the model field is the name after the provider prefix, as vLLM and llama.cpp's server expect
    assert {r["model"] for r in requests} == {"served-vllm", "served-llamacpp"}
    assert len(requests) == 2 * JOBS
    assert server.peak_in_flight == {"served-vllm": CONCURRENCY, "served-llamacpp": CONCURRENCY}
    summary = json.loads((Path(out.strip().splitlines()[-1]).parent / "summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["answered"] == 2 * JOBS
    store = Store(tmp_path / "home" / "store.sqlite")
    try:
        stored = list(store)
    finally:
        store.close()
    assert len(stored) == 2 * JOBS
    assert {(r.model, r.api_base, r.status, r.text) for r in stored} == {
        ("hosted_vllm/served-vllm", server.base_url, "ok", "a"), ("openai/served-llamacpp", server.base_url, "ok", "a")}

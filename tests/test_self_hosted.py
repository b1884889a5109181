"""Issue 13 item 4: a self-hosted OpenAI-compatible server (vLLM, llama.cpp's server) named as
`hosted_vllm/NAME` or `openai/NAME` with `api_base`, at high concurrency: the server sees that many
requests at once, and every answer is stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web

from evalrun.cli import main
from evalrun.store import Store

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer

CONCURRENCY = 200
ITEMS = CONCURRENCY  # x 2 variants: two rounds of CONCURRENCY per model, so a full window is reached and refilled
JOBS = 2 * ITEMS  # per model
LATENCY = 0.4  # long enough that one model's whole window is in flight before its first answer returns


class CountingServer(LoopbackServer):
    """The loopback server, counting the chat requests in flight at once (its peak, per model field)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        # every handler runs on the server's one event loop: no lock needed around the counts
        model = str((await request.json()).get("model"))
        self.in_flight[model] = self.in_flight.get(model, 0) + 1
        self.peak[model] = max(self.peak.get(model, 0), self.in_flight[model])
        try:
            return await super()._handle_chat(request)
        finally:
            self.in_flight[model] -= 1


def write_spec(folder: Path, base: str) -> Path:
    with (folder / "items.jsonl").open("w") as f:
        for i in range(ITEMS):
            f.write(json.dumps({"id": f"i{i}", "text": f"item {i}"}) + "\n")
    spec = folder / "served.yaml"
    spec.write_text(f"""name: served
dataset: {{path: items.jsonl}}
labels: [a, b]
variants:
  ask: {{prompt: "Is {{{{ text }}}} a or b?", extract: {{type: choice, choices: {{a: ["a"], b: ["b"]}}}}}}
  say: {{prompt: "Say a or b for {{{{ text }}}}.", extract: {{type: choice, choices: {{a: ["a"], b: ["b"]}}}}}}
models:
  - {{model: hosted_vllm/served-vllm, api_base: "{base}", concurrency: {CONCURRENCY}}}
  - {{model: openai/served-llamacpp, api_base: "{base}", api_key_env: SELF_HOSTED_KEY, concurrency: {CONCURRENCY}}}
""")
    return spec


def test_hosted_vllm_and_openai_with_api_base_at_high_concurrency(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EVALRUN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SELF_HOSTED_KEY", "local-server-key")  # llama.cpp's server takes --api-key
    with CountingServer(default_reply="a", latency=LATENCY) as server:
        code = main(["run", str(write_spec(tmp_path, server.base_url)), "--out", str(tmp_path / "out")])
        requests = list(server.requests)
    out, err = capsys.readouterr()
    assert code == 0, err
    # the model field is the name after the provider prefix, as vLLM and llama.cpp's server expect
    assert {r["model"] for r in requests} == {"served-vllm", "served-llamacpp"}
    assert len(requests) == 2 * JOBS
    assert server.peak == {"served-vllm": CONCURRENCY, "served-llamacpp": CONCURRENCY}
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

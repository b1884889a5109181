"""Issue 26, item 2: full-label likelihoods on the embedded model (`mode: likelihood`): each label's name and
keywords scored as whole token sequences after the prompt, checked against llama.cpp computing the same
sequences directly."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pytest

import evalrun
from evalrun.cli import main
from evalrun.embedded import CONTINUATIONS, gguf_path
from evalrun.extract import Reading, build_extractor, wants_logprobs
from evalrun.providers import prepare, send
from evalrun.spec import model_from_string

if TYPE_CHECKING:
    from conftest import SpecWriter
    from loopback_server import LoopbackServer

LABELS = ["cat", "dog"]
CHOICES = {"cat": ["kitten"], "dog": ["puppy"]}
SYSTEM = "Answer with one word."
QUESTION = "Which animal meows?"


def _extractor():  # type: ignore[no-untyped-def]
    return build_extractor({"type": "choice", "mode": "likelihood", "choices": CHOICES}, LABELS)


def _direct(prompt: str, texts: list[str]) -> tuple[int, dict[str, tuple[list[int], float]]]:
    """The prompt's length in tokens, and log P(text | prompt) by llama.cpp itself: the prompt and the text
    tokenized together, evaluated in one go with every position's logits, and the log-softmax of each of
    the text's tokens summed."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf_path("smollm2")), n_ctx=256, logits_all=True, verbose=False)
    try:
        start = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        out = {}
        for text in texts:
            tokens = llm.tokenize((prompt + text).encode(), add_bos=False, special=True)
            assert tokens[:len(start)] == start  # the text's tokens begin where the prompt's end
            llm.reset()
            llm.eval(tokens)
            logits = llm._scores.astype(np.float64)
            total = 0.0
            for i in range(len(start), len(tokens)):
                row = logits[i - 1]
                total += float(row[tokens[i]] - row.max() - np.log(np.exp(row - row.max()).sum()))
            out[text] = (tokens[len(start):], total)
        return len(start), out
    finally:
        llm.close()


def test_likelihoods_agree_with_a_direct_llama_cpp_computation() -> None:
    extractor = _extractor()
    texts = extractor.continuations({})
    assert {"cat", "Kitten", " puppy", "Dog"} <= set(texts)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    params = {"temperature": 0, "seed": 1, "max_tokens": 3, "logprobs": True, "top_logprobs": 20,
              CONTINUATIONS: texts}
    model = model_from_string("evalrun/smollm2")
    prepare([model])
    answer = asyncio.run(send(model, messages, params, None))
    assert answer.logprobs is not None
    logprobs = json.loads(answer.logprobs)
    scored = logprobs[0][CONTINUATIONS]
    # SmolLM2's chat template (ChatML), written out: the assistant's turn opened
    prompt = (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{QUESTION}<|im_end|>\n"
              "<|im_start|>assistant\n")
    prompt_tokens, direct = _direct(prompt, texts)
    assert answer.prompt_tokens == prompt_tokens  # the same prompt as the chat template gave the model
    for text in texts:
        tokens, logprob = direct[text]
        assert scored[text]["tokens"] == tokens, text
        assert scored[text]["logprob"] == pytest.approx(logprob, abs=1e-4), text
    # both labels have multi-token forms, and no form's tokens begin another's: each label's probability is
    # then the plain sum of its forms'
    assert all(any(len(direct[t][0]) > 1 for t in texts if t.strip().lower() in words)
               for words in ({"cat", "kitten"}, {"dog", "puppy"}))
    assert not any(a != b and direct[b][0][:len(direct[a][0])] == direct[a][0] for a in texts for b in texts)
    mass = {label: sum(math.exp(direct[t][1]) for t in texts if t.strip().lower() in {label, *CHOICES[label]})
            for label in LABELS}
    got = extractor.extract(Reading(answer.text, {}, logprobs))
    assert got.captured == pytest.approx(sum(mass.values()), rel=1e-3)
    assert got.probabilities == pytest.approx({k: v / sum(mass.values()) for k, v in mass.items()}, rel=1e-3)
    assert got.label == max(mass, key=mass.__getitem__)


def _scores(**forms: tuple[list[int], float]) -> list[dict]:
    """A reply's log-probabilities carrying these texts' scores (text -> (tokens, probability))."""
    return [{"token": "x", "logprob": -0.1, "top_logprobs": [],
             CONTINUATIONS: {t: {"tokens": k, "logprob": math.log(p)} for t, (k, p) in forms.items()}}]


def _all_forms(extractor, given: dict[str, tuple[list[int], float]]):  # type: ignore[no-untyped-def]
    """Every text the extractor scores: those given, the others at a tiny probability on tokens of their own."""
    out = dict(given)
    for i, text in enumerate(t for t in extractor.continuations({}) if t not in given):
        out[text] = ([1000 + i], 1e-12)
    return out


def test_a_labels_forms_add_up_and_nested_forms_count_once() -> None:
    extractor = build_extractor({"type": "choice", "mode": "likelihood",
                                 "choices": {"man": [], "boss": ["manager"]}}, ["man", "boss"])
    assert wants_logprobs(extractor)
    # "Man" is [7] and "Manager" [7, 8]: P("Man") = 0.5 holds "Manager"'s 0.2, which is boss's; likewise "man"
    # and "manager". "man", " man" and what "Man" keeps add up for man (a sum, not the largest)
    forms = _all_forms(extractor, {"Man": ([7], 0.5), "Manager": ([7, 8], 0.2), "man": ([9], 0.1),
                                   " man": ([10], 0.05), "manager": ([9, 8], 0.02)})
    got = extractor.extract(Reading("Man", {}, _scores(**forms)))
    man = (0.5 - 0.2) + (0.1 - 0.02) + 0.05
    boss = 0.2 + 0.02 + 2 * 1e-12  # and " manager", " Manager" at 1e-12
    assert got.captured == pytest.approx(man + boss + 1e-12, abs=1e-9)  # and " Man"
    assert got.probabilities == pytest.approx({"man": (man + 1e-12) / got.captured, "boss": boss / got.captured})
    assert got.label == "man"


def test_a_form_two_labels_share_counts_for_neither() -> None:
    extractor = build_extractor({"type": "choice", "mode": "likelihood",
                                 "choices": {"yes": ["ok"], "no": ["OK"]}}, ["yes", "no"])
    forms = _all_forms(extractor, {"ok": ([1], 0.6), "yes": ([2], 0.1), "no": ([3], 0.1)})
    got = extractor.extract(Reading("ok", {}, _scores(**forms)))
    assert got.label is None and got.reason.startswith("tie: yes 0.50, no 0.50")
    assert got.captured == pytest.approx(0.2, abs=1e-9)


def test_without_likelihoods_the_sampled_answer_is_read() -> None:
    got = _extractor().extract(Reading("A kitten.", {}, [{"token": "A", "logprob": -0.1, "top_logprobs": []}]))
    assert got.label == "cat" and got.probabilities is None
    assert got.reason.startswith("the model returned no likelihoods of the labels; read from the text")


def test_likelihood_is_refused_for_a_remote_model(tmp_path: Path, write_spec: SpecWriter,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, labels=LABELS, models=["evalrun/smollm2", "openai/gpt-4o-mini"],
                      extract={"type": "choice", "mode": "likelihood", "choices": CHOICES})
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    problems = [line for line in err.splitlines() if ": error: " in line]
    assert len(problems) == 2  # one line for each variant reading likelihoods
    assert problems[0].startswith(f"{spec}:{write_spec.where(spec, 'likelihood')}: error: "
                                  "variants.one.extract.mode: likelihood needs an embedded model, and "
                                  "'openai/gpt-4o-mini' is not one")


def test_a_run_on_the_embedded_model_reads_the_labels_likelihoods(tmp_path: Path, write_spec: SpecWriter) -> None:
    spec = write_spec(tmp_path, name="lk", labels=LABELS, inline=True,
                      items=[{"id": "a", "sound": "meows"}, {"id": "b", "sound": "barks"}],
                      variants={"ask": {"prompt": "Which animal {{ sound }}? Answer with one word: cat or dog.",
                                        "extract": {"type": "choice", "mode": "likelihood", "choices": CHOICES},
                                        "params": {"max_tokens": 3}},
                                "said": {"prompt": "Which animal {{ sound }}? Answer cat or dog.",
                                         "extract": {"type": "choice", "choices": CHOICES},
                                         "params": {"max_tokens": 3}}},
                      params={"temperature": 0, "seed": 1})
    run = evalrun.run(spec, out=tmp_path / "out", retries=0, figures=False)
    asked = run.results.filter(pl.col("variant") == "ask")
    assert asked.height == 2
    for given, captured, reason in asked.select("probabilities", "captured", "extraction").iter_rows():
        p = json.loads(given)
        assert set(p) == set(LABELS) and sum(p.values()) == pytest.approx(1.0, abs=1e-9)
        assert 0 < captured <= 1
        assert reason.endswith(f"(captured {captured:.2f})")
    entry = next(v for v in run.summary["statistics"]["variants"] if v["variant"] == "ask")
    assert entry["label_probabilities"]["answers"] == 2
    assert "## Label probabilities" in run.report_path.read_text(encoding="utf-8")


def test_a_remote_model_given_on_the_command_line_is_read_from_its_text(
        tmp_path: Path, write_spec: SpecWriter, loopback: Callable[..., LoopbackServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # validation sees the spec's models, all embedded; --model swaps in a server that scores nothing
    monkeypatch.setenv("OPENAI_API_KEY", "loopback")  # litellm's openai provider wants one; the server ignores it
    server = loopback(default_reply="A kitten.")
    spec = write_spec(tmp_path, labels=LABELS, models=["evalrun/smollm2"],
                      extract={"type": "choice", "mode": "likelihood", "choices": CHOICES})
    run = evalrun.run(spec, models=[f"openai/x@{server.base_url}"], out=tmp_path / "out", retries=0, figures=False)
    assert server.requests and all(CONTINUATIONS not in body for body in server.requests)
    assert run.results["label"].to_list() == ["cat"] * run.results.height
    assert all(r.startswith("the model returned no likelihoods of the labels; read from the text")
               for r in run.results["extraction"])

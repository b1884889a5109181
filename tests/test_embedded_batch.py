"""Batched decoding of the embedded model (SmolLM2-135M-Instruct, in-process): several requests in flight at once."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from typing import Any

import pytest

from evalrun import embedded
from evalrun.embedded import SLOTS, gguf_path
from evalrun.providers import litellm_module, prepare
from evalrun.spec import model_from_string

MODEL = "evalrun/smollm2"
STORY = [{"role": "user", "content": "Write a long story about a dragon."}]
QUESTIONS = [
    "What is the capital of France?",
    "Name three colours.",
    "Is a whale a fish or a mammal? Answer in one word.",
    "Write one sentence about the sea.",
    "What is two plus two?",
    "Say hello in Spanish.",
]


@pytest.fixture(scope="module")
def litellm() -> Any:
    prepare([model_from_string(MODEL)])
    return litellm_module()


def _ask(litellm: Any, messages: list[dict[str, str]], **params: Any) -> Any:
    return litellm.acompletion(model=MODEL, messages=messages, **params)


@pytest.mark.slow
def test_concurrent_requests_each_get_their_own_answer_and_max_tokens(litellm: Any) -> None:
    limits = [3, 5, 8, 13, 21, 4, 6, 9, 2, 7]  # more requests than slots: some wait for a free one

    async def main() -> list[Any]:
        return await asyncio.gather(*[_ask(litellm, STORY, max_tokens=n, temperature=1.0, seed=i)
                                      for i, n in enumerate(limits)])

    responses = asyncio.run(main())
    assert len(limits) > SLOTS
    for n, response in zip(limits, responses, strict=True):
        choice = response.choices[0]
        assert isinstance(choice.message.content, str) and choice.message.content.strip()
        # a long story is cut at its own max_tokens, whatever its neighbours asked for
        assert response.usage.completion_tokens == n and choice.finish_reason == "length"
        assert response.usage.prompt_tokens > 0
        assert response.usage.total_tokens == response.usage.prompt_tokens + n
        assert response._hidden_params["response_cost"] == 0.0


@pytest.mark.slow
def test_a_seed_gives_the_same_answer_whatever_runs_beside_it(litellm: Any) -> None:
    params = {"max_tokens": 12, "temperature": 0.9, "seed": 1234}

    async def alone() -> Any:
        return await _ask(litellm, STORY, **params)

    async def in_a_crowd() -> Any:
        # the same request, batched with others asking different things with other seeds
        others = [_ask(litellm, [{"role": "user", "content": q}], max_tokens=10, temperature=0.9, seed=i)
                  for i, q in enumerate(QUESTIONS)]
        results = await asyncio.gather(_ask(litellm, STORY, **params), *others)
        return results[0]

    first, second = asyncio.run(alone()), asyncio.run(in_a_crowd())
    assert first.choices[0].message.content == second.choices[0].message.content
    # and another seed gives another answer
    other = asyncio.run(_ask(litellm, STORY, **{**params, "seed": 99}))
    assert other.choices[0].message.content != first.choices[0].message.content


def test_greedy_answers_against_llama_cpp_python_one_at_a_time(litellm: Any) -> None:
    from llama_cpp import Llama

    messages = [[{"role": "user", "content": q}] for q in QUESTIONS]
    llama = Llama(model_path=str(gguf_path("smollm2")), n_ctx=512, verbose=False)
    try:
        alone = [llama.create_chat_completion(messages=m, max_tokens=16, temperature=0.0)["choices"][0]["message"]
                 ["content"] for m in messages]
    finally:
        llama.close()

    async def batched() -> list[Any]:
        return await asyncio.gather(*[_ask(litellm, m, max_tokens=16, temperature=0.0) for m in messages])

    together = [r.choices[0].message.content for r in asyncio.run(batched())]
    # Batched, llama.cpp's matrix products for several rows sum in another order than for one
    # (see embedded/batcher.py): on this quantized 135M model some greedy answers drift from a near tie
    # on. Measured here: 4 of these 6 answers identical (2 to 5 over repeated batches).
    same = sum(a == b for a, b in zip(alone, together, strict=True))
    assert same >= len(QUESTIONS) // 3, list(zip(alone, together, strict=True))


def test_logprobs_in_the_openai_shape(litellm: Any) -> None:
    response = asyncio.run(_ask(litellm, [{"role": "user", "content": QUESTIONS[0]}], max_tokens=4,
                                temperature=0.0, logprobs=True, top_logprobs=3))
    content = response.choices[0].logprobs.content
    assert len(content) == response.usage.completion_tokens == 4
    assert "".join(entry.token for entry in content) == response.choices[0].message.content
    for entry in content:
        assert entry.logprob <= 0.0 and len(entry.top_logprobs) == 3
        probabilities = [alt.logprob for alt in entry.top_logprobs]
        assert probabilities == sorted(probabilities, reverse=True)
        # greedy: the chosen token is the likeliest
        assert entry.token == entry.top_logprobs[0].token and math.isclose(entry.logprob, probabilities[0])
        assert bytes(entry.bytes).decode("utf-8") == entry.token
    plain = asyncio.run(_ask(litellm, [{"role": "user", "content": QUESTIONS[0]}], max_tokens=4, temperature=0.0))
    assert getattr(plain.choices[0], "logprobs", None) is None
    assert plain.choices[0].message.content == response.choices[0].message.content


@pytest.mark.slow
def test_clean_exit_with_requests_done_and_a_model_loaded() -> None:
    script = (
        "import asyncio\n"
        "from evalrun.providers import litellm_module, prepare\n"
        "from evalrun.spec import model_from_string\n"
        f"prepare([model_from_string({MODEL!r})])\n"
        "litellm = litellm_module()\n"
        "async def main():\n"
        f"    return await asyncio.gather(*[litellm.acompletion(model={MODEL!r}, max_tokens=3, seed=i,\n"
        "        messages=[{'role': 'user', 'content': 'Hi'}]) for i in range(3)])\n"
        "print(len(asyncio.run(main())))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"
    assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr


def test_a_prompt_another_slot_holds_is_copied_not_computed_again(litellm: Any) -> None:
    text = " ".join(f"Line {i}: the quick brown fox jumps over the lazy dog." for i in range(20))
    messages = [{"role": "user", "content": f"{text}\n\nWhat is the capital of France?"}]
    batcher = embedded._batcher("smollm2")
    before = batcher.prompt_tokens_decoded

    async def together() -> list[Any]:
        return await asyncio.gather(*[_ask(litellm, messages, max_tokens=8, temperature=0.0) for _ in range(2)])

    first, second = asyncio.run(together())
    n = first.usage.prompt_tokens
    assert second.usage.prompt_tokens == n > 200
    # The second waits a step for the first's prompt, takes a copy of its KV and decodes only the
    # last prompt token (computed twice, the two prompts alone would be twice n less the system turn).
    assert batcher.prompt_tokens_decoded - before <= n + 1
    # and the copy is the prompt's KV: the same greedy answer
    assert second.choices[0].message.content == first.choices[0].message.content


def test_an_invalid_request_fails_alone(litellm: Any) -> None:
    async def main() -> list[Any]:
        return await asyncio.gather(_ask(litellm, STORY, max_tokens=3, seed="not a number"),
                                    _ask(litellm, STORY, max_tokens=3, seed=1), return_exceptions=True)

    bad, good = asyncio.run(main())
    assert isinstance(bad, Exception) and "wrong type" in str(bad)
    assert good.usage.completion_tokens == 3
    # the decoding thread goes on
    assert asyncio.run(_ask(litellm, STORY, max_tokens=2, seed=2)).usage.completion_tokens == 2


def _conversation(story: Any) -> list[dict[str, str]]:
    return [*STORY, {"role": "assistant", "content": story.choices[0].message.content},
            {"role": "user", "content": "What is the dragon's name? Answer in one word."}]


@pytest.mark.slow
def test_a_followup_asked_after_its_slot_was_taken_restores_its_conversation(litellm: Any) -> None:
    batcher = embedded._batcher("smollm2")
    story = asyncio.run(_ask(litellm, STORY, max_tokens=40, temperature=0.0))
    followup = _conversation(story)
    first = asyncio.run(_ask(litellm, followup, max_tokens=8, temperature=0.0))
    # More conversations with long answers than there are slots: the story's slot is taken.
    for i, question in enumerate(QUESTIONS * 2):
        asyncio.run(_ask(litellm, [{"role": "user", "content": f"{i}. {question}"}], max_tokens=20,
                         temperature=1.0, seed=i))
    decoded, restored = batcher.prompt_tokens_decoded, batcher.prompt_tokens_restored
    again = asyncio.run(_ask(litellm, followup, max_tokens=8, temperature=0.0))
    n = again.usage.prompt_tokens
    # The whole conversation but its last token came back from host memory, none of it recomputed...
    assert batcher.prompt_tokens_restored - restored == n - 1
    assert batcher.prompt_tokens_decoded - decoded == 1
    # ...and it is the KV it was: the same greedy answer as when the slot still held it.
    assert again.choices[0].message.content == first.choices[0].message.content


@pytest.mark.slow
def test_saved_conversations_stay_within_their_budget(monkeypatch: pytest.MonkeyPatch, litellm: Any) -> None:
    from evalrun.embedded import batcher as module

    # room for about two conversations of ~100 tokens (23 KB a token on SmolLM2)
    monkeypatch.setattr(module, "SAVED_BYTES", 5_000_000)
    batcher = module.Batcher(gguf_path("smollm2"))
    try:
        def ask(messages: list[dict[str, str]], **params: Any) -> Any:
            return batcher.submit(messages, {"temperature": 0.0, **params}).result(timeout=120)

        stories = [[{"role": "user", "content": f"Write a story about a dragon called {name}."}]
                   for name in ("Ash", "Birch", "Cedar", "Dune")]
        answers = [ask(s, max_tokens=60) for s in stories]
        for i in range(SLOTS):  # every story's slot is taken, so each was saved, then the oldest dropped
            ask([{"role": "user", "content": f"Count to {i + 3}."}], max_tokens=4)
        saved = batcher._saved
        assert 1 <= len(saved) < len(stories) and 0 < saved.bytes <= 5_000_000

        def followup(k: int) -> int:
            """Prompt tokens of the k-th story's follow-up that came back from host memory."""
            before = batcher.prompt_tokens_restored
            ask([*stories[k], {"role": "assistant", "content": answers[k].text},
                 {"role": "user", "content": "Name the dragon."}], max_tokens=2)
            return batcher.prompt_tokens_restored - before

        assert followup(len(stories) - 1) > answers[-1].prompt_tokens  # the newest is kept
        assert followup(0) == 0  # the oldest was dropped: its follow-up is computed again
    finally:
        batcher.close()

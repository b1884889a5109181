"""Which models `--batch` can batch, and what their answers cost there."""

from __future__ import annotations

import os

from ..providers import litellm_module
from ..spec import ModelConfig
from ..spec.model import COMPLETION
from .settings import max_requests, poll_seconds

BATCH_DISCOUNT = 0.5  # OpenAI's and Anthropic's batch price, as a share of the usual one


def unbatchable(model: ModelConfig) -> str | None:
    """None if the model's requests can go through a batch API, else why they cannot."""
    if model.embedded:
        return "it runs here (embedded), with no batch API"
    if model.mode == COMPLETION:
        return "it is asked in `mode: completion`, and evalrun's batches go to the chat endpoint"
    provider = _provider(model)
    if provider == "openai":
        return None
    if provider == "anthropic":
        return "litellm 1.106.2 can read Anthropic batches but not create them"
    return f"evalrun sends batches to OpenAI only, and this model's provider is {provider or 'unknown'}"


def batch_priced(models: list[ModelConfig]) -> set[str]:
    """The models whose requests `--batch` sends through a batch API, so whose answers cost batch prices
    (summary.json marks them): a batchable provider, and its key set (a model without one is not asked).
    Called before a run starts, it checks the batch settings too, so a bad one stops the run at once."""
    poll_seconds(), max_requests()
    return {m.name for m in models
            if unbatchable(m) is None and not (m.api_key_env and not os.environ.get(m.api_key_env))}


def _provider(model: ModelConfig) -> str | None:
    try:
        return str(litellm_module().get_llm_provider(model=model.model, api_base=model.api_base)[1])
    except Exception:  # litellm raises a bare BadRequestError-like Exception for a model it cannot place
        return None


def batch_prices(model: ModelConfig) -> tuple[float, float] | None:
    """Batch prices per input and output token: litellm's batch prices where its price list has them, else
    the usual price (the spec's `price` first) at the provider's batch discount; None if no price is known."""
    if model.price is not None:
        return model.price[0] / 1e6 * BATCH_DISCOUNT, model.price[1] / 1e6 * BATCH_DISCOUNT
    try:
        info = litellm_module().get_model_info(model.model)
    except Exception:  # litellm raises a bare Exception for a model it has not mapped
        return None

    def price(kind: str) -> float | None:
        batch, usual = info.get(f"{kind}_cost_per_token_batches"), info.get(f"{kind}_cost_per_token")
        return batch if batch is not None else None if usual is None else usual * BATCH_DISCOUNT

    found = price("input"), price("output")
    if found == (None, None):
        return None
    return found[0] or 0.0, found[1] or 0.0


def price_basis(model: ModelConfig) -> str:
    """Where `batch_prices` found the model's batch prices, in words."""
    if batch_prices(model) is None:
        return "an unknown price (litellm has none for this model; a `price` in the spec gives one)"
    if model.price is not None:
        return f"{BATCH_DISCOUNT:.0%} of the spec's price"
    if litellm_module().get_model_info(model.model).get("input_cost_per_token_batches") is not None:
        return "litellm's batch prices"
    return f"{BATCH_DISCOUNT:.0%} of litellm's usual price"


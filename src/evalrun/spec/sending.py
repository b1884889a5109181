"""What a schema cannot say about where and how a spec's requests are sent: each model string's address and
`api_base:` (and the judge's) is a valid one, no two models share a name,
no credential is written in any `params:`, and no request's max_tokens outgrows its model's tokens-per-minute
limit. `checks` runs these with the spec's other checks; `api.run` runs the token budget again after the
command line's --tpm."""

from __future__ import annotations

from ..address import address_problem, split_address
from ..errors import Problem
from ..errors import short as _short
from ..redact import credential_params
from .model import Spec
from .wording import dotted as _dotted


def address_problems(spec: Spec) -> list[Problem]:
    """Model strings whose `@` begins no valid address, and `api_base:` values that are not one: either would
    send a model's requests, with the user's key, somewhere the user did not mean (see `split_address`)."""
    problems = []
    for i, model in enumerate(spec.located.data.get("models") or []):  # type: ignore[union-attr]
        at: tuple[str | int, ...] = ("models", i) if isinstance(model, str) else ("models", i, "model")
        text = model if isinstance(model, str) else model["model"]
        try:
            _, address = split_address(text)
        except ValueError as exc:
            problems.append(spec.located.problem(at, f"{_dotted(at)}: {exc}"))
            continue
        if address is not None and not isinstance(model, str):
            problems.append(spec.located.problem(at, f"{_dotted(at)}: an address after '@' in a model object",
                                                 hint="give it as `api_base:`, and the model string without it"))
        if isinstance(model, dict) and "api_base" in model and (problem := address_problem(model["api_base"])):
            where = ("models", i, "api_base")
            problems.append(spec.located.problem(where, f"{_dotted(where)}: '{_short(model['api_base'])}' {problem}",
                                                 hint="the base URL of the model's server, e.g. "
                                                 "http://127.0.0.1:8080/v1"))
    if isinstance(judge := spec.located.data.get("judge"), str):  # type: ignore[union-attr]
        try:
            split_address(judge)
        except ValueError as exc:
            problems.append(spec.located.problem(("judge",), f"judge: {exc}"))
    return problems


def _params_places(spec: Spec) -> list[tuple[tuple[str | int, ...], dict[str, object]]]:
    """Every `params:` mapping of the spec with where it stands: top level, each model object's, each variant's,
    each follow-up's and each reader's (a judge's requests carry its own)."""
    data = spec.located.data
    places: list[tuple[tuple[str | int, ...], dict[str, object]]] = [(("params",), data.get("params") or {})]
    places += [(("models", i, "params"), m.get("params") or {}) for i, m in enumerate(data.get("models") or [])
               if isinstance(m, dict)]
    places += [(("variants", name, "params"), v.get("params") or {}) for name, v in data["variants"].items()]
    for name, variant in spec.variants.items():
        if variant.followup is not None:
            places.append((("variants", name, "followup", "params"), variant.followup.params))
        for at, config in variant.readings():
            params = config.get("params")
            if isinstance(params, dict):
                places.append(((*at, "params"), params))
    return places


def _resolve(params: object, dotted: str) -> tuple[str | int, ...]:
    """A dotted parameter path as the spec's keys and list indexes, for locating it."""
    path: list[str | int] = []
    node = params
    for part in dotted.split("."):
        step: str | int = int(part) if isinstance(node, list) else part
        path.append(step)
        node = node[step] if isinstance(node, (list, dict)) else None  # type: ignore[index]
    return tuple(path)


def credential_problems(spec: Spec) -> list[Problem]:
    """Keys written into params (or their headers): they would be stored with every answer and printed in
    reports, so a spec names the environment variable that holds the key instead."""
    problems = []
    for at, params in _params_places(spec):
        for dotted in credential_params(params):
            where = (*at, *_resolve(params, dotted))
            problems.append(spec.located.problem(where, f"{_dotted(where)}: a credential written in the spec "
                                                 "would be stored with every answer and printed in reports",
                                                 key=True, hint="put it in an environment variable and name "
                                                 "that in the model's `api_key_env`"))
    return problems


def token_budget_problems(spec: Spec) -> list[Problem]:
    """A max_tokens over a model's tpm: each request counts max_tokens against the minute's budget before it
    is sent, so such a request could never be paced and the run would wait forever."""
    problems = []
    for i, model in enumerate(spec.models):
        if not model.tpm:
            continue
        for name, variant in spec.variants.items():
            levels = [(("params",), spec.params), (("models", i, "params"), model.params),
                      (("variants", name, "params"), variant.params)]
            at, chosen = next(((at, p) for at, p in reversed(levels) if "max_tokens" in p), ((), {}))
            max_tokens = chosen.get("max_tokens")
            if isinstance(max_tokens, int) and max_tokens > model.tpm:
                where = (*at, "max_tokens")
                problems.append(spec.located.problem(
                    where, f"{_dotted(where)}: {max_tokens:,} is more than the tpm of model '{_short(model.name)}' "
                    f"({model.tpm:,g}), so one request would need more than a minute's token budget and the run "
                    "would wait for it forever",
                    hint="lower max_tokens, or raise the model's tpm"))
    return list(dict.fromkeys(problems))


def model_problems(spec: Spec) -> list[Problem]:
    """Models that would be mixed up: reports, limits, prices and results tell models apart by name. (One model
    string at two addresses may have two prices: each entry's price is its own, providers.own_price.)"""
    problems: list[Problem] = []
    named: dict[str, int] = {}
    for i, model in enumerate(spec.models):
        if model.name in named:
            problems.append(spec.located.problem(("models", i), f"models.{i}: a second model named "
                                                 f"'{_short(model.name)}' (models.{named[model.name]} is the first)",
                                                 hint="give each its own `name:`"))
        named.setdefault(model.name, i)
    return problems

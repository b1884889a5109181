"""The Run section: what was run (spec, dataset, the design's levels, models), what it cost and when."""

from __future__ import annotations

import json
from typing import Any


def _design_text(meta: dict[str, Any]) -> str:
    """`2 conditions x 2 variants (direct: 2 paraphrases x 2 option orders) x `: the design's levels."""
    design = meta.get("design", {})
    text = f"{len(design['conditions'])} conditions x " if "conditions" in design else ""
    per_variant = []
    for variant in meta["variants"]:
        levels = []
        if design.get("paraphrases", {}).get(variant, 1) > 1:
            levels.append(f"{design['paraphrases'][variant]} paraphrases")
        if variant in design.get("option_orders", {}):
            levels.append(f"{len(design['option_orders'][variant])} option orders")
        if levels:
            per_variant.append(f"{variant}: " + " x ".join(levels))
    return text + f"{len(meta['variants'])} variants " + (f"({'; '.join(per_variant)}) " if per_variant else "") + "x "


def _cost(meta: dict[str, Any], totals: dict[str, Any]) -> str:
    if totals["cost_usd"] is None:
        cost = "unknown (no price known for these models)"
    else:
        cost = f"${totals['cost_usd']:.4f}" + (f" (+ {totals['cost_unknown_responses']} responses of unknown price)"
                                              if totals["cost_unknown_responses"] else "")
    if batched := [m["name"] for m in meta["models"] if m.get("batch_prices")]:
        cost += " (at batch-API prices for " + ", ".join(f"`{name}`" for name in batched) + ")"
    return cost


def _readers(meta: dict[str, Any], totals: dict[str, Any]) -> list[str]:
    """The models readers asked (a judge's) and what their requests took: absent when no reader asked one."""
    if not meta.get("judges"):
        return []
    asked = totals.get("readers")
    line = "- readers asked " + ", ".join(f"`{m['name']}` ({m['model']})" for m in meta["judges"])
    if asked:
        line += (f": {asked['jobs']} requests ({asked['asked']} asked, {asked['from_store']} from the store, "
                 f"{asked['failed']} failed), {asked['prompt_tokens']:,} prompt + {asked['completion_tokens']:,} "
                 f"completion tokens, cost {_cost(meta, asked)}")
    return [line]


def _mode(mode: str | None) -> str:
    """How a model entry asked, where its `mode:` said: a base model's raw text completion is not a chat."""
    return {"completion": ", as raw text completion (no chat template)", "chat": ", as chat"}.get(mode or "", "")


def _variant_modes(meta: dict[str, Any]) -> str:
    """The variants whose own `mode:` overrides every model's."""
    modes = meta.get("variant_modes") or {}
    return "".join(f"; *{variant}* asks every model {'as raw text completion' if mode == 'completion' else 'as chat'}"
                   for variant, mode in modes.items())


def run(meta: dict[str, Any], totals: dict[str, Any]) -> list[str]:
    return ["", "## Run", "",
            f"- spec: `{meta['spec_path']}` (sha256 {meta['spec_sha256'][:16]}…), dataset {meta['dataset_source']} "
            f"(sha256 {meta['dataset_sha256'][:16]}…)",
            "- models: " + ", ".join(f"`{m['name']}` ({m['model']}{_mode(m.get('mode'))})" for m in meta["models"])
            + _variant_modes(meta),
            f"- {meta['items']} items x {_design_text(meta)}{len(meta['models'])} models x "
            f"{meta['samples']} samples = {totals['jobs']} jobs: {totals['asked']} asked, "
            f"{totals['from_store']} from the store, {totals['failed']} failed",
            f"- parameters: `{json.dumps(meta['params'], sort_keys=True)}`; sample k uses seed "
            f"{meta['seed']} + k",
            f"- tokens: {totals['prompt_tokens']:,} prompt + {totals['completion_tokens']:,} completion; cost "
            f"{_cost(meta, totals)}",
            *_readers(meta, totals),
            f"- started {meta['started']}, took {meta['duration_s']:.1f} s",
            "- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
            ""]

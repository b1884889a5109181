"""The eval spec: its typed form (`model`), loading (`load`), schema errors in words (`wording`) and
the checks a schema cannot express (`checks`, which gathers them; `compared` for `compare:` and
`predicts:`, `sending` for models, addresses, credentials and token budgets, `literals` for template syntax
where nothing is rendered).

`schemas/evalspec.schema.json` is the single source of truth for the format; this package adds
what a schema cannot say and turns every failure into a located Problem.
"""

from .checks import check_columns
from .load import load_spec, parse_spec, read_spec
from .model import (
    DEFAULT_CONCURRENCY,
    DEFAULT_SEED,
    DEFAULT_TIMEOUT,
    EMBEDDED_MODEL,
    Condition,
    DatasetConfig,
    HubDataset,
    ModelConfig,
    Options,
    Spec,
    Turn,
    Variant,
    default_concurrency,
    followup_variant,
    is_embedded,
    mode_of,
    model_from_string,
    schema,
)
from .wording import describe

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_SEED", "DEFAULT_TIMEOUT", "EMBEDDED_MODEL", "Condition", "DatasetConfig",
           "HubDataset", "ModelConfig", "Options", "Spec", "Turn", "Variant", "check_columns", "default_concurrency",
           "describe", "followup_variant", "is_embedded", "load_spec", "mode_of", "model_from_string", "parse_spec",
           "read_spec", "schema"]

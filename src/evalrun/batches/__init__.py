"""Provider batch APIs (`evalrun run --batch`): a stage's requests as JSONL files the provider answers within
a day, at half price, instead of one HTTP request each.

For each model whose provider litellm can batch (OpenAI: litellm 1.106.2 uploads files and creates batches
for `openai` only among the providers evalrun serves; it retrieves Anthropic batches but cannot create them),
the stage's pending jobs (those without a stored answer) are written as JSONL, uploaded and submitted, split
so that no batch exceeds the provider's limits. Each input file is recorded in the store (migration 004) once
uploaded, with the request keys it covers, and its batch id the moment the batch exists, so a run killed
while waiting polls those batches again rather than paying twice. A batch's output and error files are
stored line by line as soon as the batch ends, as the same `StoredResponse` rows the one-request path
writes, so extraction, the report and resume cannot tell the two apart. Other models run the usual way in
the same stage.
"""

from .pricing import batch_priced, batch_prices, price_basis, unbatchable
from .settings import MAX_REQUESTS_ENV, POLL_ENV
from .stage import batch_stage

__all__ = ["MAX_REQUESTS_ENV", "POLL_ENV", "batch_priced", "batch_prices", "batch_stage", "price_basis", "unbatchable"]

"""What the batcher reads from the model's output: a token's text, the log-softmax of a batch row's logits,
a generated token's log-probabilities in OpenAI's shape, and a continuation's log-likelihood after a prompt.

The figures are the model's own distribution (before temperature and truncation); batcher.py's docstring
says how they compare with llama.cpp and llama-cpp-python decoding one call at a time.
"""

from __future__ import annotations

import ctypes
from typing import Any


class Logits:
    """Reads one llama.cpp context's logits and its model's vocabulary, from the batcher's thread."""

    def __init__(self, lib: Any, ctx: Any, vocab: Any, n_vocab: int, memory: Any, batch: Any) -> None:
        self._lib, self._ctx, self._vocab, self._n_vocab = lib, ctx, vocab, n_vocab
        self._memory = memory
        self._batch = batch  # the batcher's own: a continuation is decoded between its steps
        self._pieces: dict[int, bytes] = {}

    def piece(self, token: int) -> bytes:
        """The token's text, as bytes (a character may span several tokens)."""
        piece = self._pieces.get(token)
        if piece is None:
            size = 64
            buffer = ctypes.create_string_buffer(size)
            n = self._lib.llama_token_to_piece(self._vocab, token, buffer, size, 0, False)
            if n < 0:  # longer than the buffer: -n is the length needed
                size = -n
                buffer = ctypes.create_string_buffer(size)
                n = self._lib.llama_token_to_piece(self._vocab, token, buffer, size, 0, False)
            piece = self._pieces[token] = buffer.raw[:n]
        return piece

    def log_softmax(self, row: int) -> Any:
        """The log-softmax of a batch row's logits (float64), the model's own next-token distribution."""
        import numpy as np

        logits = np.ctypeslib.as_array(self._lib.llama_get_logits_ith(self._ctx, row),
                                       shape=(self._n_vocab,)).astype(np.float64)
        logits -= logits.max()
        return logits - np.log(np.exp(logits).sum())

    def logprobs(self, row: int, token: int, k: int) -> dict[str, Any]:
        """The token's entry of OpenAI's `choices[0].logprobs.content`, with the row's k likeliest tokens."""
        import numpy as np

        logprobs = self.log_softmax(row)
        top = np.argpartition(-logprobs, k - 1)[:k] if k else np.empty(0, dtype=np.int64)
        top = top[np.argsort(-logprobs[top], kind="stable")]

        def entry(t: int) -> dict[str, Any]:
            piece = self.piece(t)
            return {"token": piece.decode("utf-8", errors="ignore"), "logprob": float(logprobs[t]),
                    "bytes": list(piece)}

        return {**entry(token), "top_logprobs": [entry(int(t)) for t in top]}

    def continuation(self, slot: int, start: int, tokens: list[int], first: Any) -> float:
        """log P(tokens | the slot's first `start` tokens): the first token's from `first` (the prompt's
        log-softmax), each next one's from decoding the tokens after the prompt in the slot, alone in the
        batch. Leaves the slot's KV past `start` to be dropped by the caller."""
        lib, batch = self._lib, self._batch
        logprob = float(first[tokens[0]])
        if len(tokens) > 1:
            lib.llama_memory_seq_rm(self._memory, slot, start, -1)
            # The last token too, though its logits are not needed: llama.cpp computes a batch of one token
            # by another path than a batch of several, whose rounding differs, and decoding the text
            # whole keeps its figures those of the prompt and the text decoded together
            for i, token in enumerate(tokens):
                batch.token[i] = token
                batch.pos[i] = start + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = slot
                batch.logits[i] = i < len(tokens) - 1
            batch.n_tokens = len(tokens)
            code = lib.llama_decode(self._ctx, batch)
            if code != 0:
                raise RuntimeError(f"llama_decode returned {code}")
            logprob += sum(float(self.log_softmax(i)[token]) for i, token in enumerate(tokens[1:]))
        return logprob

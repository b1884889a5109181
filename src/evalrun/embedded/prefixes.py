"""Finished conversations' KV, kept in host memory for the conversation's next turn.

A batcher's slots hold the KV of the last SLOTS prompts and answers, and a new prompt decodes only
what follows the longest prefix one of them holds. That serves prompts that come close together
(one item's wordings), but not the next turn of a conversation, which in an evaluation comes
late: a follow-up repeats its first request and the model's answer after the whole first stage,
when the answer's slot has long been taken. Recomputing it costs a prefill of the prompt and
the answer (on SmolLM2, 2 CPUs: about 3.5 ms a token, 1 s for a 300-token story), where the
answer's KV was computed once already.

So before a slot's KV is dropped, a slot holding an answer of SHARED_MIN or more tokens past
its prompt has its sequence state saved here (`llama_state_seq_get_data`: the cells' positions,
K and V, about 23 KB a token on SmolLM2; a few milliseconds), and a later prompt that shares more
with a saved state than with any slot gets it written back into a slot
(`llama_state_seq_set_data`, a memory copy), then decodes only the rest. The bytes written back
are the bytes saved, so a restored prefix is exactly the KV it was. Short answers (a label, a
number) are not saved: what follows them is rarely worth the copy, and their prompts' shared
parts stay in the slots. States are dropped least recently used first past SAVED_BYTES.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from typing import Any

SAVED_BYTES = 1 << 30  # host memory for saved states, per model: about 45,000 tokens of SmolLM2's KV


def shared_prefix(kept: list[int] | tuple[int, ...], prompt: list[int]) -> int:
    """How many tokens the two sequences share from their start."""
    n = 0
    for a, b in zip(kept, prompt, strict=False):
        if a != b:
            break
        n += 1
    return n


class SavedConversations:
    """Saved sequence states of one llama.cpp context, keyed by the tokens they hold."""

    def __init__(self, lib: Any, ctx: Any, budget: int = SAVED_BYTES) -> None:
        self._lib, self._ctx, self._budget = lib, ctx, budget
        self._states: OrderedDict[tuple[int, ...], Any] = OrderedDict()  # least recently used first
        self.bytes = 0
        self.restored_tokens = 0  # prompt tokens restored instead of decoded, over the batcher's life

    def __len__(self) -> int:
        return len(self._states)

    def save(self, slot: int, tokens: list[int]) -> None:
        """Keep the state of `slot`, whose KV holds `tokens`, unless a saved state holds them already."""
        key = tuple(tokens)
        for held in self._states:
            if held[:len(key)] == key:
                self._states.move_to_end(held)
                return
        size = self._lib.llama_state_seq_get_size(self._ctx, slot)
        if size > self._budget:
            return
        state = (ctypes.c_uint8 * size)()
        if self._lib.llama_state_seq_get_data(self._ctx, state, size, slot) != size:
            return  # llama.cpp could not write it: nothing is lost but the chance to reuse it
        for held in [held for held in self._states if key[:len(held)] == held]:
            self._drop(held)  # a shorter prefix of this one is redundant now
        self._states[key] = state
        self.bytes += size
        while self.bytes > self._budget:
            self._drop(next(iter(self._states)))

    def best(self, prompt: list[int]) -> tuple[tuple[int, ...] | None, int]:
        """The saved state sharing the longest prefix with `prompt`, and how many tokens it shares."""
        found, most = None, 0
        for held in self._states:
            n = shared_prefix(held, prompt)
            if n > most:
                found, most = held, n
        return found, most

    def restore(self, key: tuple[int, ...], slot: int) -> bool:
        """Write a saved state into `slot` (replacing what it held); False if llama.cpp refused it."""
        state = self._states[key]
        self._states.move_to_end(key)
        if self._lib.llama_state_seq_set_data(self._ctx, state, len(state), slot) == len(state):
            return True
        self._drop(key)
        return False

    def _drop(self, key: tuple[int, ...]) -> None:
        self.bytes -= len(self._states.pop(key))

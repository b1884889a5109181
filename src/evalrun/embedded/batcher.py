"""The decoding thread of one embedded model.

Batched decoding. Each model has one decoding thread that holds up to SLOTS requests at once,
each in its own sequence of one llama.cpp context (its own KV stream of CONTEXT_TOKENS tokens).
Requests queue for it; at every step it admits queued requests into free slots, then decodes in
one `llama_decode` batch the next token of every generating sequence together with the prompts
of newly admitted ones, and samples each sequence from its own logits with its own sampler
chain. A finished sequence leaves at once, so a 6-token answer never waits for an 80-token story
decoded beside it. Concurrency above 1 (requests in flight per model) is what fills the slots;
with one request at a time this is plain one-sequence decoding. The batch lists its sequences in
slot order, because llama.cpp (one KV stream per sequence) computes a batch in micro-batches of
sequences whose ids follow each other in that order: in any other order 8 generating sequences
took 8 passes over the weights (75 ms a step instead of 45).

What stays as llama-cpp-python's one-at-a-time `Llama.create_chat_completion` decodes it (the
prompt, the sampler chain and the texts to score are prepared in preparing.py; log-probabilities
and likelihoods are read in logits.py):
- the prompt: llama-cpp-python's own chat handler renders the GGUF's chat template and tokenizes
  it (a Llama whose `create_completion` hands back its arguments instead of decoding), so the
  prompt tokens, the template's stop strings and the sampling defaults are the library's;
- the sampler chain: top-k 40, typical-p 1, top-p (0.95), min-p 0.05, temperature (0.2), then a
  draw from a generator seeded with the request's `seed`, one chain per request, so a seed gives
  the same draws whatever else is in the batch; temperature 0 is greedy;
- a raw completion (`evalrun_mode="completion"`, a base model's way of being asked): the request's one
  message is the whole prompt, tokenized as `Llama.create_completion(text)` tokenizes a string (the
  GGUF's own BOS where it asks for one, special tokens read as such) with no chat template, and
  create_completion's defaults (max_tokens 16, temperature 0.8, ...) fill what the request leaves
  unset; no stop string but the request's;
- stopping and reporting: end-of-generation tokens and stop strings give finish_reason "stop",
  `max_tokens` (capped by the context, as llama-cpp-python caps it) gives "length"; usage counts
  the prompt and the generated tokens; the cost is zero.

What differs:
- logits: a batch of several sequences goes through llama.cpp's matrix products for several rows,
  whose floating-point sums are ordered differently from one row's, so logits differ slightly and
  a greedy or seeded answer can change from a near tie on. On SmolLM2 (Q4_1) this is common: of 6
  short greedy answers, 2 to 5 stayed identical across repeated batches (tests/test_embedded_batch.py).
  Requests decoded one at a time from a fresh model give llama-cpp-python's answers exactly;
- the prefix cache: a finished sequence's KV stays in its slot and a later prompt sharing its
  prefix decodes only the rest (as llama-cpp-python reuses the previous call's prefix, but over
  SLOTS slots). With requests in flight together, a prefix a busy slot holds is copied into the
  free slot (llama.cpp copies a sequence's whole KV stream, then the tail past the prefix is
  dropped), and a request whose prefix another slot's prompt is about to give waits a step for
  it (see Batcher._admit), so one item's wordings, decoded side by side, compute their shared
  text once; a conversation whose answer's slot was taken has its state saved to host memory
  and written back for its next turn (prefixes.py), the same bytes. KV computed inside a batch
  carries the batch's differences into later answers, so at concurrency above 1 an answer can
  depend on what ran before and beside it: a rerun is reproducible only from the store, or at
  concurrency 1, where nothing is copied or held back and the answers are those of the version
  before cross-slot sharing;
- a request without a seed draws a random one (llama-cpp-python derived each unseeded call's seed
  from the previous one, so answers depended on the order of calls);
- `max_tokens` is exact: llama-cpp-python could run a token or two past it to finish a
  multi-byte character;
- log-probabilities: `logprobs=True` (with `top_logprobs=k`, up to the vocabulary) returns, for
  every generated token, its log-probability and the k likeliest alternatives under the model's
  own distribution (log-softmax of the logits, before temperature and truncation) in the OpenAI
  shape `choices[0].logprobs.content = [{token, logprob, bytes, top_logprobs: [...]}]`, where
  llama-cpp-python's chat path refused them without `logits_all`;
- continuation likelihoods: `evalrun_continuations=[text, ...]` (with `logprobs=True`) scores each
  text as the answer's start after the prompt: log P(its tokens | prompt), the sum of the log-softmax
  of each of its tokens, tokenized alone (without BOS or special tokens) as llama.cpp tokenizes the
  prompt's next text. They come back on the first token's entry of the log-probabilities (an end
  token's entry when the answer is empty) as `evalrun_continuations: {text: {"logprob", "tokens"}}`.
  The first token's log-probability is read from the prompt's logits that sampled the answer; the
  rest are decoded once the answer is finished, one text at a time after the prompt in the answer's
  slot (the answer's KV is saved first if a follow-up could want it, then dropped). On a prompt
  decoded whole they equal llama.cpp evaluating the prompt and the text in one batch; a prompt
  partly reused from the prefix cache carries the batch differences above into them.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .logits import Logits
from .prefixes import SAVED_BYTES, SavedConversations, shared_prefix
from .preparing import CONTINUATIONS, Prepared, Request, prepare, prompt_only_llama

CONTEXT_TOKENS = 2048  # per sequence: prompt and answer together
SLOTS = 8  # sequences decoded together, per model
BATCH_TOKENS = 2048  # tokens per llama_decode call; longer prompts are fed in chunks
SHARED_MIN = 16  # tokens worth a KV copy, a restore or waiting a step for (see Batcher._admit)


@dataclass(frozen=True)
class Answer:
    """One finished request, as the batcher hands it back."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    logprobs: list[dict[str, Any]] | None  # OpenAI's choices[0].logprobs.content, when asked for


@dataclass
class _Sequence:
    """A request admitted into a slot, from its prompt to its answer."""

    future: concurrent.futures.Future[Answer]
    slot: int
    prompt: list[int]
    pending: list[int]  # prompt tokens not decoded yet
    max_tokens: int
    stop: list[bytes]
    top_logprobs: int | None  # None: no log-probabilities asked for
    continuations: dict[str, list[int]]
    sampler: Any  # llama_sampler_p, freed when the sequence ends
    pos: int = 0  # position of the next token fed: the tokens in the slot's KV are (prompt + tokens)[:pos]
    tokens: list[int] = field(default_factory=list)
    text: bytes = b""
    logprobs: list[dict[str, Any]] = field(default_factory=list)
    row: int = -1  # row of the current batch this sequence samples from; -1: none this step
    first: Any = None  # the prompt's next-token log-softmax (numpy), kept while continuations await scoring


class Batcher:
    """The decoding thread of one model: see the module's docstring."""

    def __init__(self, path: Path) -> None:
        from llama_cpp import llama_cpp as lib

        self._lib = lib
        self._formatter = prompt_only_llama(path)
        self._vocab = self._formatter._model.vocab
        self._n_vocab = lib.llama_vocab_n_tokens(self._vocab)
        params = lib.llama_context_default_params()
        params.n_ctx = CONTEXT_TOKENS * SLOTS
        params.n_seq_max = SLOTS
        # One KV stream per sequence: each attends over its own tokens only, as it would alone.
        params.kv_unified = False
        params.n_batch = BATCH_TOKENS
        # As llama-cpp-python's Llama sets it: llama.cpp's default ("auto") turns flash attention
        # on, whose differently ordered sums change the logits.
        params.flash_attn_type = lib.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.n_threads = params.n_threads_batch = os.cpu_count() or 1
        params.no_perf = True
        self._ctx = lib.llama_init_from_model(self._formatter._model.model, params)
        if not self._ctx:
            self._formatter.close()
            raise RuntimeError(f"llama.cpp could not create a context of {SLOTS} sequences for {path}")
        self._memory = lib.llama_get_memory(self._ctx)
        self._batch = lib.llama_batch_init(BATCH_TOKENS, 0, 1)
        self._logits = Logits(lib, self._ctx, self._vocab, self._n_vocab, self._memory, self._batch)
        self._kept: list[list[int]] = [[] for _ in range(SLOTS)]  # the tokens in each slot's KV
        # where the first generated token is in each slot's tokens (their length if none is)
        self._answer_from = [0] * SLOTS
        self._last_used = [0] * SLOTS
        self._finished = 0
        self._saved = SavedConversations(lib, self._ctx, SAVED_BYTES)
        self.prompt_tokens_decoded = 0  # what the prefix cache left to compute, of all prompts admitted
        self.prompt_tokens_restored = 0  # of those the cache served, how many came from saved conversations
        self._queue: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._closed = False
        # A daemon thread: interpreter shutdown must not wait for it; close() (atexit) stops it.
        self._thread = threading.Thread(target=self._run, name=f"evalrun-embedded-{path.name}", daemon=True)
        self._thread.start()

    def submit(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> concurrent.futures.Future[Answer]:
        if self._closed or not self._thread.is_alive():
            raise RuntimeError("the embedded model has been closed")
        future: concurrent.futures.Future[Answer] = concurrent.futures.Future()
        self._queue.put(Request(messages, params, future))
        return future

    def close(self) -> None:
        """Stop the thread (requests still queued or decoding fail), then free llama.cpp's memory."""
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        self._lib.llama_batch_free(self._batch)
        self._lib.llama_free(self._ctx)
        self._formatter.close()

    # The decoding thread

    def _run(self) -> None:
        free = set(range(SLOTS))
        active: list[_Sequence] = []
        waiting: list[Prepared] = []  # in arrival order, until a slot is free and no prefill is worth awaiting
        try:
            while True:
                # Block only when nothing is decoding or waiting; otherwise take what has already arrived.
                while True:
                    try:
                        request = self._queue.get(block=not active and not waiting)
                    except queue.Empty:
                        break
                    if request is None:
                        return
                    prepared = prepare(request, self._formatter, self._n_vocab, CONTEXT_TOKENS)
                    if prepared is not None:
                        waiting.append(prepared)
                admitted: list[_Sequence] = []
                for prepared in list(waiting):
                    if not free:
                        break
                    sequence = self._admit(prepared, free, active, admitted)
                    if sequence is not None:
                        waiting.remove(prepared)
                        admitted.append(sequence)
                        free.remove(sequence.slot)
                active += admitted
                for sequence in self._step(active):
                    active.remove(sequence)
                    free.add(sequence.slot)
        except BaseException as error:  # every waiting caller must hear of it
            for sequence in active:
                if not sequence.future.done():
                    sequence.future.set_exception(error)
            for prepared in waiting:
                prepared.future.set_exception(error)
            raise
        finally:
            self._closed = True
            for sequence in active:
                self._lib.llama_sampler_free(sequence.sampler)
                if not sequence.future.done():
                    sequence.future.set_exception(RuntimeError("the embedded model was closed mid-answer"))
            for prepared in waiting:
                self._lib.llama_sampler_free(prepared.sampler)
                if not prepared.future.done():
                    prepared.future.set_exception(RuntimeError("the embedded model was closed before answering"))
            while True:
                try:
                    request = self._queue.get_nowait()
                except queue.Empty:
                    break
                if request is not None and request.future.set_running_or_notify_cancel():
                    request.future.set_exception(RuntimeError("the embedded model was closed before answering"))

    def _admit(self, prepared: Prepared, free: set[int], active: list[_Sequence],
               admitted: list[_Sequence]) -> _Sequence | None:
        """Put the request in a free slot holding as much of its prompt's KV as can be had, or hold
        it back (None) while a prompt being processed will give it SHARED_MIN tokens more.

        Prompt processing is most of an evaluation's compute (its prompts are long, its answers
        short), and its prompts share prefixes: the chat template's system turn, an item's text
        asked in several wordings, a follow-up that repeats the first turn and its answer. A
        finished sequence's KV stays in its slot, so a prompt decodes only its new tail after the
        longest prefix a free slot holds; a longer prefix in a busy slot is copied into a free one
        (llama.cpp copies a whole KV stream, a memory copy of microseconds per token, where
        computing it costs milliseconds). Requests in flight together are often one item's
        wordings: the second waits a step for the first's prompt instead of computing it again.
        A conversation's next turn, asked after its slot was taken, finds its first turn and
        answer among the states saved to host memory (prefixes.py).
        """
        prompt = prepared.prompt
        slot = max(sorted(free, key=self._last_used.__getitem__), key=lambda s: shared_prefix(self._kept[s], prompt))
        have = shared_prefix(self._kept[slot], prompt)
        source, copied = None, have
        for sequence in active:  # their KV holds (prompt + tokens)[:pos]
            held = shared_prefix(sequence.prompt[:sequence.pos], prompt)
            if held == len(sequence.prompt) < sequence.pos:  # and some of its answer
                held += shared_prefix(sequence.tokens[:sequence.pos - held], prompt[held:])
            if held > copied:
                source, copied = sequence, held
        saved, restored = self._saved.best(prompt)
        coming = max((shared_prefix(s.prompt, prompt) for s in [*active, *admitted] if s.pending), default=0)
        if coming >= max(have, copied, restored) + SHARED_MIN:
            return None
        answer_from = self._answer_from[slot]
        if max(copied, restored) >= have + SHARED_MIN:
            slot = min(free, key=self._last_used.__getitem__)  # the free slot unused the longest
            self._save_before_dropping(slot, 0)
            have, answer_from = 0, len(prompt)  # where an answer starts in what is copied is not tracked
            # A restore writes only the saved cells, a copy the whole stream: on a tie, the restore.
            if saved is not None and restored >= copied:
                if self._saved.restore(saved, slot):
                    have = restored
                    self.prompt_tokens_restored += min(restored, len(prompt) - 1)
            elif source is not None:
                self._lib.llama_memory_seq_cp(self._memory, source.slot, slot, -1, -1)
                have = copied
        else:
            self._save_before_dropping(slot, have)
        # At least the prompt's last token is decoded again: its logits give the first answer token.
        reused = min(have, len(prompt) - 1)
        self._lib.llama_memory_seq_rm(self._memory, slot, reused, -1)
        self._kept[slot] = prompt[:reused]
        self._answer_from[slot] = min(answer_from, reused)
        return _Sequence(future=prepared.future, slot=slot, prompt=prompt, pending=prompt[reused:], pos=reused,
                         max_tokens=prepared.max_tokens, stop=prepared.stop, top_logprobs=prepared.top_logprobs,
                         continuations=prepared.continuations, sampler=prepared.sampler)

    def _save_before_dropping(self, slot: int, keep: int) -> None:
        """Save the slot's state (prefixes.py) if the KV past its first `keep` tokens, about to be
        dropped, holds SHARED_MIN or more tokens from the first answer generated in it on."""
        tokens = self._kept[slot]
        if len(tokens) - max(keep, self._answer_from[slot]) >= SHARED_MIN:
            self._saved.save(slot, tokens)

    def _step(self, active: list[_Sequence]) -> list[_Sequence]:
        """Decode one batch, sample every sequence that got logits; returns the sequences that ended."""
        lib, batch = self._lib, self._batch
        n = 0

        def put(token: int, sequence: _Sequence, logits: bool) -> None:
            nonlocal n
            batch.token[n] = token
            batch.pos[n] = sequence.pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = sequence.slot
            batch.logits[n] = logits
            sequence.pos += 1
            n += 1

        # Every generating sequence gets its token in; prompts share the rest of the batch.
        room = BATCH_TOKENS - sum(not sequence.pending for sequence in active)
        # In slot order: with one KV stream per sequence, llama.cpp splits a batch into micro-batches
        # of sequences whose ids follow each other in the batch's order (and as many tokens of
        # each), one pass over the weights per micro-batch; in any other order, 8 generating
        # sequences took 8 passes.
        for sequence in sorted(active, key=lambda sequence: sequence.slot):
            sequence.row = -1
            if not sequence.pending:  # generating: feed the token sampled last step
                sequence.row = n
                put(sequence.tokens[-1], sequence, True)
            elif room > 0:
                chunk = sequence.pending[:room]
                room -= len(chunk)
                del sequence.pending[:len(chunk)]
                self.prompt_tokens_decoded += len(chunk)
                for token in chunk:
                    put(token, sequence, False)
                if not sequence.pending:  # the whole prompt is in: sample its first answer token
                    batch.logits[n - 1] = True
                    sequence.row = n - 1
        batch.n_tokens = n
        code = lib.llama_decode(self._ctx, batch)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}")

        # Every sequence samples before any finishes: scoring a finished answer's continuations decodes
        # again, which overwrites this batch's logits.
        ended = [(sequence, reason) for sequence in active
                 if sequence.row >= 0 and (reason := self._sample(sequence)) is not None]
        for sequence, reason in ended:
            self._finish(sequence, reason)
        return [sequence for sequence, _ in ended]

    def _sample(self, sequence: _Sequence) -> str | None:
        """Sample the sequence's next token; the finish reason if that ends it."""
        lib = self._lib
        token = lib.llama_sampler_sample(sequence.sampler, self._ctx, sequence.row)
        if sequence.continuations and not sequence.tokens:
            sequence.first = self._logits.log_softmax(sequence.row)
        if lib.llama_vocab_is_eog(self._vocab, token):
            if sequence.continuations and not sequence.tokens:  # the scores need an entry to travel on
                sequence.logprobs.append(self._logits.logprobs(sequence.row, token, sequence.top_logprobs or 0))
            return "stop"  # the end token is neither text nor counted, as in llama-cpp-python
        if sequence.top_logprobs is not None:
            sequence.logprobs.append(self._logits.logprobs(sequence.row, token, sequence.top_logprobs))
        sequence.tokens.append(token)
        sequence.text += self._logits.piece(token)
        hits = [s for s in sequence.stop if s in sequence.text]
        if hits:
            sequence.text = sequence.text[:sequence.text.index(hits[0])]
            return "stop"
        return "length" if len(sequence.tokens) >= sequence.max_tokens else None

    def _finish(self, sequence: _Sequence, reason: str) -> None:
        lib = self._lib
        self._kept[sequence.slot] = (sequence.prompt + sequence.tokens)[:sequence.pos]
        self._answer_from[sequence.slot] = min(self._answer_from[sequence.slot], len(sequence.prompt))
        if sequence.continuations:
            sequence.logprobs[0][CONTINUATIONS] = self._score(sequence)
        self._finished += 1
        self._last_used[sequence.slot] = self._finished
        lib.llama_sampler_free(sequence.sampler)
        sequence.sampler = None
        sequence.future.set_result(Answer(
            text=sequence.text.decode("utf-8", errors="ignore"), finish_reason=reason,
            prompt_tokens=len(sequence.prompt), completion_tokens=len(sequence.tokens),
            logprobs=sequence.logprobs if sequence.top_logprobs is not None else None))

    def _score(self, sequence: _Sequence) -> dict[str, dict[str, Any]]:
        """log P(text | prompt) of each continuation, decoded after the prompt in the sequence's slot (logits.py)."""
        slot, start = sequence.slot, len(sequence.prompt)
        # The slot's KV past the prompt (the answer) is dropped: a follow-up turn restores it from the save.
        self._save_before_dropping(slot, start)
        scores = {text: {"logprob": self._logits.continuation(slot, start, tokens, sequence.first), "tokens": tokens}
                  for text, tokens in sequence.continuations.items()}
        self._lib.llama_memory_seq_rm(self._memory, slot, start, -1)
        self._kept[slot] = sequence.prompt[:start]
        self._answer_from[slot] = start
        sequence.first = None
        return scores

"""Packed examples: a user's history and some of their impressions, each seen as its own request.

Every candidate sees exactly the history its own request would have had: the
last H engagements of its user strictly before it (`history_len` H), oldest
first, each history item encoded with the same context as in that request. An
example holds one history and up to C candidates (`num_candidates`) that share
it, each with a cutoff (how many of the history items it may see):

* a user's impressions with at most H engagements before them share the
  user's first engagements: each sees the prefix before it (the cutoff);
* an impression with k > H engagements before it needs exactly engagements
  k-H..k-1, which only the impressions with the same k share: the impressions
  between two engagements form one example.

Because history attention is causal and a candidate sees only items before its
cutoff, no label leaks into its own input, and packed logits equal the logits
of each candidate's own request (tested). Packing is vectorised over the whole
log (no Python loop per user or window).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np

from phoenix.data.batch import RequestBatch
from phoenix.data.dataset import SPLITS, ImpressionLog

BLOCK = 1 << 16  # examples filled at once


class PackedExamples:
    """N packed examples held as rows of the log they came from: each engagement sits in up to H
    histories, so nothing is copied out of the log until a batch (or an evaluation split) asks.
    Padding is row -1, read as id 0 (and impression id 0)."""

    def __init__(self, log: ImpressionLog, user_id: np.ndarray, history_rows: np.ndarray,
                 candidate_rows: np.ndarray, candidate_cutoff: np.ndarray):
        self.log = log
        self.user_id = user_id  # [N]
        self.history_rows = history_rows  # [N, H] oldest first
        self.candidate_rows = candidate_rows  # [N, C]
        self.candidate_cutoff = candidate_cutoff  # [N, C]

    def __len__(self) -> int:
        return int(self.user_id.shape[0])

    def take(self, rows: np.ndarray) -> PackedExamples:
        return PackedExamples(self.log, self.user_id[rows], self.history_rows[rows], self.candidate_rows[rows],
                              self.candidate_cutoff[rows])

    def _gather(self, column: np.ndarray, rows: np.ndarray, dtype) -> np.ndarray:  # [N, X(, A)]
        real = rows >= 0
        values = column[np.maximum(rows, 0)]
        return np.where(real.reshape(real.shape + (1,) * (values.ndim - real.ndim)), values, 0).astype(dtype)

    @functools.cached_property
    def request(self) -> RequestBatch:
        h, c, log = self.history_rows, self.candidate_rows, self.log
        return RequestBatch(
            user_id=self.user_id,
            history_post_id=self._gather(log.post_id, h, np.int64),
            history_author_id=self._gather(log.author_id, h, np.int64),
            history_actions=self._gather(log.labels, h, np.int8),
            history_surface=self._gather(log.surface, h, np.int32),
            candidate_post_id=self._gather(log.post_id, c, np.int64),
            candidate_author_id=self._gather(log.author_id, c, np.int64),
            candidate_surface=self._gather(log.surface, c, np.int32),
            candidate_cutoff=self.candidate_cutoff,
        )

    @functools.cached_property
    def labels(self) -> np.ndarray:  # [N, C, A] int8
        return self._gather(self.log.labels, self.candidate_rows, np.int8)

    @functools.cached_property
    def impression_id(self) -> np.ndarray:  # [N, C]
        return self._gather(self.log.impression_id, self.candidate_rows, np.int64)


def user_event_groups(log: ImpressionLog, rows: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(user id, that user's rows among `rows`, in time order) for each user, by user id."""
    order = rows[np.lexsort((rows, log.user_id[rows]))]  # log rows are time-ordered already
    users = log.user_id[order]
    bounds = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True])
    for start, end in zip(bounds[:-1], bounds[1:]):
        yield int(users[start]), order[start:end]


def half_overlapping_windows(n: int, window: int) -> list[tuple[int, int]]:
    """(start, first new position) of windows of `window` items over a sequence of n items.

    Windows advance by window/2; each after the first exists only while it adds new items and
    trains only its second half, so every position is trained exactly once and (except a
    user's first items) with at least window/2 items of context before it.
    """
    step = max(1, window // 2)
    return [(0, 0)] + [(start, window - step) for start in range(step, n - window + step, step)]


def pack_examples(log: ImpressionLog, split: str, history_len: int, num_candidates: int) -> PackedExamples:
    """Pack every impression of `split` into examples of up to H history items and C candidates."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    h, c = history_len, num_candidates
    n = log.user_id.size
    order = np.lexsort((np.arange(n), log.user_id))  # [n] by user, then log (time) order
    user = log.user_id[order]
    first_event = np.r_[True, user[1:] != user[:-1]]  # [n] a user's first event
    user_index = np.cumsum(first_event) - 1  # [n]
    engaged = log.labels[order].any(axis=1)  # [n]
    before = np.cumsum(engaged) - engaged  # [n] engaged events earlier in this order (all users)
    eng_start = before[first_event]  # [U] where each user's engagements start in `eng_rows`
    eng_rows = order[engaged]  # [E] log rows of engagements, by user then time
    k = before - eng_start[user_index]  # [n] the user's engagements strictly before each event

    pos = np.flatnonzero(log.split[order] == SPLITS.index(split))  # [M] candidates, by user then time
    if pos.size == 0:
        raise ValueError(f"split {split!r} has no impressions to pack")
    key = np.maximum(k[pos], h)  # [M] candidates with one key share one history
    new_group = np.r_[True, (user_index[pos][1:] != user_index[pos][:-1]) | (key[1:] != key[:-1])]
    group_start = np.flatnonzero(new_group)
    in_group = np.arange(pos.size) - np.repeat(group_start, np.diff(np.r_[group_start, pos.size]))  # [M]
    new_example = in_group % c == 0
    example = np.cumsum(new_example) - 1  # [M]
    slot = in_group % c  # [M]
    starts = np.flatnonzero(new_example)  # [N]
    seen = np.maximum.reduceat(k[pos], starts)  # [N] history items of the example: its last candidate's
    first = np.maximum(seen - h, 0)  # [N] the first of them (0 unless every candidate had k > H)
    owner = user_index[pos[starts]]  # [N]

    count = len(starts)
    index = np.int32 if n < 2**31 else np.int64  # log rows
    history_rows = np.full((count, h), -1, index)
    length = seen - first  # [N]
    for lo in range(0, count, BLOCK):  # bounded temporaries: a block of examples at a time
        block = slice(lo, min(lo + BLOCK, count))
        ex, col = np.nonzero(np.arange(h)[None, :] < length[block, None])  # (example, slot) in use
        ex += lo
        history_rows[ex, col] = eng_rows[eng_start[owner[ex]] + first[ex] + col]
    candidate_rows = np.full((count, c), -1, index)
    candidate_rows[example, slot] = order[pos]
    candidate_cutoff = np.zeros((count, c), np.int32)
    candidate_cutoff[example, slot] = k[pos] - first[example]
    return PackedExamples(log, user[pos[starts]], history_rows, candidate_rows, candidate_cutoff)


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Steps of one pass over the examples as `batch_rows` draws them (full batches; at least one)."""
    return max(1, num_examples // batch_size)


def batch_rows(num_examples: int, batch_size: int, seed: int, step: int, stream: int | None = None) -> np.ndarray:
    """Example rows of training step `step`: a fixed function of (seed, step, stream).

    Each epoch is a fresh permutation seeded by (seed, epoch), so a resumed run
    sees exactly the batches the uninterrupted run would have seen. `stream`
    (a process index) gives each process its own permutations of its own examples.
    """
    epoch, offset = divmod(step, steps_per_epoch(num_examples, batch_size))
    entropy = [seed, epoch] if stream is None else [seed, epoch, stream]
    perm = np.random.default_rng(entropy).permutation(num_examples)
    rows = perm[offset * batch_size : (offset + 1) * batch_size]
    if rows.size < batch_size:  # fewer examples than one batch: wrap around
        rows = np.resize(perm, batch_size)
    return rows

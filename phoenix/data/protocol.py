"""The next-item protocol (SASRec, Kang & McAuley 2018; ../shared/REFERENCE.md §7).

Per user, interactions in time order: the last is the test target, the one
before it the validation target, the rest the training sequence. Validation
ranks its target after the training sequence; test ranks its target after the
training sequence plus the validation item. Each target is ranked against
`negatives` items the user never interacted with, drawn uniformly without
replacement with a seed per (user, split), so a user's negatives do not depend
on which other users are in the file. Users with fewer than
`min_interactions` only train.

Metrics: the target's rank is the number of negatives scoring at least as high
as it (a tie counts against the target); HR@10 is rank < 10 and NDCG@10 is
1/log2(rank + 2) when rank < 10, else 0.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from phoenix.data.ids import encode_ids
from phoenix.data.interactions import InteractionLog
from phoenix.data.negatives import TrainingNegatives, sample_negatives

SPLIT_STREAMS = {"valid": 1, "test": 2}


@dataclasses.dataclass
class UserSequences:
    """Every user's interactions in time order (CSR: user index u has rows offsets[u-1]:offsets[u])."""

    offsets: np.ndarray  # [U+1]
    item: np.ndarray  # [N]
    author: np.ndarray  # [N]
    actions: np.ndarray  # [N, A] int8

    def rows(self, user: int) -> slice:
        return slice(int(self.offsets[user - 1]), int(self.offsets[user]))

    @property
    def lengths(self) -> np.ndarray:  # [U]
        return np.diff(self.offsets)


def user_sequences(log: InteractionLog) -> UserSequences:
    order = np.argsort(log.user, kind="stable")  # the log is in time order; stable keeps it per user
    counts = np.bincount(log.user, minlength=log.num_users + 1)[1:]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return UserSequences(offsets, log.item[order], log.author[order], log.actions[order])


@dataclasses.dataclass
class NextItemSplit:
    """Who trains on what, and the evaluation targets with their sampled negatives."""

    sequences: UserSequences
    num_items: int
    train_len: np.ndarray  # [U] leading interactions of each user that are training data
    eval_users: np.ndarray  # [E] 1-based user indices with valid and test targets
    negatives: dict[str, np.ndarray]  # split -> [E, n] item indices
    # The model id (`phoenix.data.ids`) of each dense index (row 0: padding): the model hashes
    # these, so a request in the log's own ids scores as the benchmark did. None: the indices.
    model_ids: dict[str, np.ndarray] | None = None  # "user" [U+1], "item" [I+1], "author" [W+1]

    def eval_sample(self, size: int, seed: int) -> NextItemSplit:
        """The split with `size` of its evaluated users, drawn uniformly with `seed` (all when size is 0
        or at least their number): SASRec's authors validate on 10,000 users of a larger log."""
        if size <= 0 or size >= self.eval_users.size:
            return self
        rows = np.sort(np.random.default_rng([seed, 3]).choice(self.eval_users.size, size, replace=False))
        return dataclasses.replace(
            self, eval_users=self.eval_users[rows], negatives={k: v[rows] for k, v in self.negatives.items()})

    def train_mask(self) -> np.ndarray:  # [N] rows of `sequences` that are training data
        position = np.arange(self.sequences.item.size) - np.repeat(self.sequences.offsets[:-1], self.sequences.lengths)
        return position < np.repeat(self.train_len, self.sequences.lengths)

    def training_negatives(self) -> TrainingNegatives:
        users = np.repeat(np.arange(1, self.train_len.size + 1), self.sequences.lengths)
        train = self.train_mask()
        return TrainingNegatives(users[train], self.sequences.item[train], self.num_items)

    def target_rows(self, split: str) -> np.ndarray:  # [E] row in `sequences` of each user's target
        starts = self.sequences.offsets[self.eval_users - 1]
        return starts + self.train_len[self.eval_users - 1] + (0 if split == "valid" else 1)

    def candidates(self, split: str) -> np.ndarray:  # [E, 1+n]: the target first, then the negatives
        target = self.sequences.item[self.target_rows(split)]
        return np.concatenate([target[:, None], self.negatives[split]], axis=1)

    def history_len(self, split: str) -> np.ndarray:  # [E] interactions before the target
        return self.train_len[self.eval_users - 1] + (0 if split == "valid" else 1)


def split_next_item(
    log: InteractionLog, negatives: int = 100, seed: int = 0, min_interactions: int = 3
) -> NextItemSplit:
    seqs = user_sequences(log)
    lengths = seqs.lengths
    eligible = lengths >= min_interactions
    train_len = np.where(eligible, lengths - 2, lengths)
    eval_users = np.flatnonzero(eligible) + 1
    sampled = {split: np.zeros((eval_users.size, negatives), np.int64) for split in SPLIT_STREAMS}
    for i, user in enumerate(eval_users.tolist()):
        excluded = np.unique(seqs.item[seqs.rows(user)])
        for split, stream in SPLIT_STREAMS.items():
            rng = np.random.default_rng([seed, stream, user])
            sampled[split][i] = sample_negatives(excluded, log.num_items, negatives, rng, user)
    return NextItemSplit(seqs, log.num_items, train_len, eval_users, sampled, model_ids(log))


def model_ids(log: InteractionLog) -> dict[str, np.ndarray]:
    """Model ids of the log's users, items and authors by dense index, 0 for the padding index."""
    def padded(raw: np.ndarray, field: str) -> np.ndarray:
        return np.concatenate([[0], encode_ids(np.asarray(raw).astype(str), field)]).astype(np.int64)

    return {"user": padded(log.user_ids, "user_id"), "item": padded(log.item_ids, "item_id"),
            "author": padded(log.author_ids, "author_id")}


def target_ranks(scores: np.ndarray) -> np.ndarray:  # [E]
    """Negatives scoring at least as high as the target (column 0); ties count against it."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"scores: expected [users, 1 + negatives], got shape {scores.shape}")
    if not np.all(np.isfinite(scores)):
        bad = int(np.argwhere(~np.isfinite(scores))[0][0])
        raise ValueError(f"scores: row {bad} holds NaN or infinite scores")
    return (scores[:, 1:] >= scores[:, :1]).sum(axis=1)


def user_ndcg(scores: np.ndarray, k: int = 10) -> np.ndarray:  # [E]
    """Each user's NDCG@k (one target per row, in column 0): 1/log2(rank + 2) inside the top k, else 0."""
    ranks = target_ranks(scores)
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def hit_and_ndcg(scores: np.ndarray, k: int = 10) -> dict[str, float]:
    """HR@k and NDCG@k averaged over users (one target per row, in column 0)."""
    ndcg = user_ndcg(scores, k)
    return {f"hr@{k}": float((ndcg > 0).mean()), f"ndcg@{k}": float(ndcg.mean())}

"""Sampling items a user never interacted with: for evaluation and for training.

Evaluation negatives are drawn per (seed, split, user) without replacement
from everything the user ever touched (`sample_negatives`). Training
negatives are drawn per epoch, one batch of draws for every position at once,
from outside the user's *training* interactions only, so no validation or test
item ever shapes training (`TrainingNegatives`).
"""

from __future__ import annotations

import numpy as np


def sample_negatives(
    excluded: np.ndarray, num_items: int, n: int, rng: np.random.Generator, user: int
) -> np.ndarray:  # [n]
    """n distinct items in 1..num_items outside the sorted `excluded`, uniformly."""
    free = num_items - excluded.size
    if free < n:
        raise ValueError(f"user {user}: only {free} items were never interacted with; {n} negatives are needed")
    if free < 4 * n:  # dense user: draw from the complement directly
        return rng.choice(np.setdiff1d(np.arange(1, num_items + 1), excluded), n, replace=False)
    picked: list[int] = []
    seen = set(excluded.tolist())
    while len(picked) < n:
        for item in rng.integers(1, num_items + 1, size=2 * n).tolist():
            if item not in seen:
                seen.add(item)
                picked.append(item)
                if len(picked) == n:
                    break
    return np.asarray(picked, np.int64)


class TrainingNegatives:
    """Uniform items outside each user's training interactions, vectorised over many draws."""

    def __init__(self, users: np.ndarray, items: np.ndarray, num_items: int):
        self.num_items = num_items
        self.keys = np.unique(users.astype(np.int64) * (num_items + 1) + items)  # sorted (user, item) pairs
        # keys[starts[u] : starts[u + 1]] are user u's distinct training items (0 <= u <= max user + 1)
        self.starts = np.searchsorted(self.keys, np.arange(int(users.max(initial=0)) + 3) * (num_items + 1))
        distinct = np.diff(self.starts)  # [max user + 2]: a repeated interaction counts once
        if distinct.max(initial=0) >= num_items:
            raise ValueError(f"user {int(distinct.argmax())}: interacted with every item; no negative exists")

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        query = users.astype(np.int64) * (self.num_items + 1) + items
        at = np.minimum(np.searchsorted(self.keys, query), max(self.keys.size - 1, 0))
        return (self.keys.size > 0) & (self.keys[at] == query)

    def positives_among(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:  # [B, S]
        """`is_positive(users[:, None], items[None, :])` for users [B] (>= 0; 0 or above the largest: padding)
        and distinct items [S]: each user's own items are looked up in the sample, not the sample in the
        user's items, so the cost is the users' training lengths, not B·S binary searches."""
        users = np.minimum(users.astype(np.int64), self.starts.size - 2)  # the last entry has no items
        lo = self.starts[users]  # [B] first key of each user
        counts = self.starts[users + 1] - lo  # [B] distinct training items of each user
        row = np.repeat(np.arange(users.size), counts)  # [T] batch row of each of their (user, item) keys
        at = np.arange(row.size) - np.repeat(np.cumsum(counts) - counts - lo, counts)  # [T] index into keys
        where = np.full(self.num_items + 1, -1, np.int64)
        where[items] = np.arange(items.size)  # [I+1] position of each item in the sample, -1: absent
        column = where[self.keys[at] % (self.num_items + 1)]  # [T]
        mask = np.zeros((users.size, items.size), bool)
        mask[row[column >= 0], column[column >= 0]] = True
        return mask

    def draw(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:  # same shape as users
        """One negative per entry of `users` (redrawn until it is not a training item of that user)."""
        items = rng.integers(1, self.num_items + 1, size=users.shape)
        clash = self.is_positive(users, items)
        while clash.any():
            items[clash] = rng.integers(1, self.num_items + 1, size=int(clash.sum()))
            clash[clash] = self.is_positive(users[clash], items[clash])
        return items

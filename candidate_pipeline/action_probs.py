"""`ActionProbs`: one candidate's P(action), readable as a dict, backed by an array row.

The Phoenix scorer produces a [C, A] matrix; building C Python dicts from it
and reading them back into a matrix for the weighted score cost milliseconds
per 1,500-candidate request. An `ActionProbs` is a read-only mapping over one
row, so callers still write `probs["favorite"]`, and stages that know the
action order read the row with no per-action work.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np


class ActionProbs(Mapping[str, float]):
    __slots__ = ("actions", "index", "row")

    def __init__(self, actions: tuple[str, ...], index: dict[str, int], row: np.ndarray):
        self.actions = actions  # head names, in row order
        self.index = index  # name -> position in the row
        self.row = row  # [A] float

    @classmethod
    def rows_of(cls, actions: tuple[str, ...], probs: np.ndarray) -> list[ActionProbs]:
        """One mapping per row of probs [C, A], all sharing the name index."""
        if probs.ndim != 2 or probs.shape[1] != len(actions):
            raise ValueError(f"probs: expected shape [C, {len(actions)}], got {probs.shape}")
        index = {name: i for i, name in enumerate(actions)}
        return [cls(actions, index, row) for row in probs]

    def __getitem__(self, name: str) -> float:
        return float(self.row[self.index[name]])

    def __iter__(self) -> Iterator[str]:
        return iter(self.actions)

    def __len__(self) -> int:
        return len(self.actions)

    def __repr__(self) -> str:
        return f"ActionProbs({dict(self)})"


def probability_matrix(mappings: list[Mapping[str, float]], actions: tuple[str, ...]) -> np.ndarray:  # [C, A]
    """Stack per-candidate probabilities in `actions` order, fast when they are ActionProbs rows."""
    if all(isinstance(m, ActionProbs) and m.actions == actions for m in mappings):
        return np.stack([m.row for m in mappings]).astype(np.float64)
    return np.array([[m[a] for a in actions] for m in mappings], np.float64)

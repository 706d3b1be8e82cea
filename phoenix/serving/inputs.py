"""Plain request inputs shared by the scoring service and the candidate pipeline (numpy only: no JAX here)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from phoenix.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class Engagement:
    """One history item: a post the user acted on, with the actions taken."""

    post_id: int
    author_id: int
    actions: tuple[str, ...]
    surface: int = 0


@dataclasses.dataclass(frozen=True)
class CandidatePost:
    """The part of a candidate the ranker sees."""

    post_id: int
    author_id: int
    surface: int = 0


def history_arrays(
    history: Sequence[Engagement], config: ModelConfig, keep_recent_history: bool = False
) -> dict[str, np.ndarray]:
    """One request's history as padded [1, H] arrays, oldest first; names the bad field.

    Longer histories than model.history_len fail unless `keep_recent_history`,
    which keeps the most recent items.
    """
    h_max = config.history_len
    if len(history) > h_max:
        if not keep_recent_history:
            raise ValueError(
                f"history: {len(history)} items exceed model.history_len={h_max}; pass the most "
                "recent items or build the service with keep_recent_history=True"
            )
        history = history[-h_max:]
    index = {name: i for i, name in enumerate(config.actions)}
    actions = np.zeros((1, h_max, config.num_actions), np.int8)
    for i, item in enumerate(history):
        for name in item.actions:
            if name not in index:
                raise ValueError(f"history[{i}].actions: unknown action {name!r}")
            actions[0, i, index[name]] = 1
    padding = [0] * (h_max - len(history))
    return {
        "history_post_id": np.array([[e.post_id for e in history] + padding], np.int64),
        "history_author_id": np.array([[e.author_id for e in history] + padding], np.int64),
        "history_actions": actions,
        "history_surface": np.array([[e.surface for e in history] + padding], np.int64),
    }

"""`Retriever`: the two-tower model and a corpus index behind one object.

It turns requests into user vectors, posts into item vectors (to build an
index) and a viewer into the top-K out-of-network posts. Both towers run as
`jax.jit` programs over the split model state, with the batch padded to a
power of two so a few programs serve every request size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from phoenix.config import PhoenixConfig
from phoenix.data.batch import RequestBatch, featurize, hash_table_ids
from phoenix.retrieval.corpus_index import NO_TIME, CorpusIndex, power_of_two_bucket
from phoenix.retrieval.two_tower import TwoTowerModel, build_two_tower
from phoenix.serving.inputs import Engagement, history_arrays


def _pad_rows(array: np.ndarray, rows: int) -> np.ndarray:
    pad = [(0, rows - array.shape[0])] + [(0, 0)] * (array.ndim - 1)
    return np.pad(array, pad)


@dataclasses.dataclass(frozen=True)
class RetrievedPost:
    post_id: int
    author_id: int
    created_s: int | None
    score: float


class Retriever:
    def __init__(self, model: TwoTowerModel, config: PhoenixConfig, index: CorpusIndex | None = None):
        self.config = config
        self.index = index
        self.model_step: int | None = None  # the checkpoint step, when loaded from a workdir
        graphdef, state = nnx.split(model)
        self._user = jax.jit(lambda s, prefix: nnx.merge(graphdef, s).user_tower(prefix))
        self._item = jax.jit(lambda s, posts, authors: nnx.merge(graphdef, s).item_tower(posts, authors))
        self._state = state

    @classmethod
    def load(cls, workdir: str | Path, index_path: str | Path | None = None, with_index: bool = True) -> Retriever:
        """The latest retrieval checkpoint of a workdir (its step in `model_step`) and, unless
        `with_index` is False (to build one), its index (default WORKDIR/retrieval/index.npz)."""
        from phoenix.workdir import load_workdir_config, restore_params

        config = load_workdir_config(workdir)
        model = build_two_tower(config.model, config.retrieval)
        step = restore_params(Path(workdir) / "retrieval", model)
        index = CorpusIndex.load(index_path or default_index_path(workdir)) if with_index else None
        retriever = cls(model, config, index)
        retriever.model_step = step
        return retriever

    def request(self, user_id: int, history: Sequence[Engagement]) -> RequestBatch:
        """A one-user request (most recent history kept) for `user_vectors` and `search`."""
        if isinstance(user_id, bool) or not isinstance(user_id, int | np.integer) or user_id <= 0:
            raise ValueError(f"user_id: expected a positive integer id, got {user_id!r}")
        one = np.zeros((1, 1), np.int64)
        arrays = history_arrays(history, self.config.model, keep_recent_history=True)
        return RequestBatch(np.array([user_id], np.int64), **arrays, candidate_post_id=one, candidate_author_id=one,
                            candidate_surface=one, candidate_cutoff=one)

    def retrieve(
        self,
        user_id: int,
        history: Sequence[Engagement],
        k: int,
        exclude_post_ids: Collection[int] = (),
        exclude_author_ids: Collection[int] = (),
        created_after: int | None = None,
        created_at_or_before: int | None = None,
    ) -> list[RetrievedPost]:
        """The user's top-k posts of the index, best first, none of them excluded."""
        rows, scores = self._search_rows(
            self.request(user_id, history), k, [np.fromiter(exclude_post_ids, np.int64)],
            [np.fromiter(exclude_author_ids, np.int64)], created_after, created_at_or_before,
        )
        found = rows[0] >= 0
        rows, scores = rows[0][found], scores[0][found]
        index = self.index
        return [
            RetrievedPost(int(index.post_ids[r]), int(index.author_ids[r]),
                          None if index.created_s[r] == NO_TIME else int(index.created_s[r]), float(s))
            for r, s in zip(rows, scores)
        ]

    def user_vectors(self, requests: RequestBatch) -> np.ndarray:  # [B, D]
        """Unit user vectors after each request's whole history (candidates are ignored)."""
        batch = featurize(requests, self.config.model).prefix
        n = batch.user_hashes.shape[0]
        padded = jax.tree.map(lambda x: _pad_rows(np.asarray(x), power_of_two_bucket(n, minimum=1)), batch)
        return np.asarray(self._user(self._state, padded))[:n]

    def item_vectors(self, post_ids: np.ndarray, author_ids: np.ndarray) -> np.ndarray:  # [n, D]
        for name, ids in (("post_id", post_ids), ("author_id", author_ids)):
            if np.any(np.asarray(ids) == 0):
                raise ValueError(f"{name}: ids must be positive (0 is padding)")
        posts = hash_table_ids(post_ids, "post", "post_id", self.config.model)
        authors = hash_table_ids(author_ids, "author", "author_id", self.config.model)
        n = posts.shape[0]
        size = power_of_two_bucket(n, minimum=8)
        return np.asarray(self._item(self._state, _pad_rows(posts, size), _pad_rows(authors, size)))[:n]

    def build_index(
        self,
        post_ids: np.ndarray,
        author_ids: np.ndarray,
        created_s: np.ndarray | None = None,
        meta: dict | None = None,
    ) -> CorpusIndex:
        return CorpusIndex.build(self.item_vectors, post_ids, author_ids, created_s, meta=meta)

    def search(
        self,
        requests: RequestBatch,
        k: int,
        exclude_post_ids: list[np.ndarray] | None = None,
        exclude_author_ids: list[np.ndarray] | None = None,
        created_after: int | None = None,
        created_at_or_before: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:  # post ids [B, k], scores [B, k]
        """Top-k corpus posts per request, never one of its excluded posts or authors."""
        rows, scores = self._search_rows(requests, k, exclude_post_ids, exclude_author_ids, created_after,
                                         created_at_or_before)
        return np.where(rows >= 0, self.index.post_ids[np.maximum(rows, 0)], 0), scores

    def _search_rows(
        self,
        requests: RequestBatch,
        k: int,
        exclude_post_ids: list[np.ndarray] | None,
        exclude_author_ids: list[np.ndarray] | None,
        created_after: int | None,
        created_at_or_before: int | None,
    ) -> tuple[np.ndarray, np.ndarray]:  # corpus rows [B, k] (-1: none left), scores [B, k]
        if self.index is None:
            raise ValueError("index: this retriever has no corpus index (run `phoenix index` first)")
        excluded = []
        for i in range(requests.user_id.shape[0]):
            posts = self.index.rows_of(exclude_post_ids[i]) if exclude_post_ids is not None else []
            authors = self.index.rows_by_authors(exclude_author_ids[i]) if exclude_author_ids is not None else []
            excluded.append(np.unique(np.concatenate([posts, authors]).astype(np.int64)))
        block = self.config.retrieval.search_block_scores
        return self.index.search_rows(self.user_vectors(requests), k, excluded, created_after, created_at_or_before,
                                      block)


def default_index_path(workdir: str | Path) -> Path:
    return Path(workdir) / "retrieval" / "index.npz"

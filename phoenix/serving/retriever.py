"""`Retriever`: the two-tower model and a corpus index behind one object.

It turns requests into user vectors, posts into item vectors (to build an
index) and a viewer into the top-K out-of-network posts. Both towers run as
`jax.jit` programs over the split model state, with the batch padded to a
power of two so a few programs serve every request size.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from flax import nnx

from phoenix.config import PhoenixConfig
from phoenix.model.batch import RequestBatch, featurize
from phoenix.model.hashing import hash_ids, hash_seeds
from phoenix.model.two_tower import TwoTowerModel
from phoenix.serving.corpus_index import CorpusIndex


def _pad_rows(array: np.ndarray, rows: int) -> np.ndarray:
    pad = [(0, rows - array.shape[0])] + [(0, 0)] * (array.ndim - 1)
    return np.pad(array, pad)


def _bucket(n: int) -> int:
    return max(8, 1 << max(0, n - 1).bit_length())


class Retriever:
    def __init__(self, model: TwoTowerModel, config: PhoenixConfig, index: CorpusIndex | None = None):
        self.config = config
        self.index = index
        graphdef, state = nnx.split(model)
        self._user = jax.jit(lambda s, prefix: nnx.merge(graphdef, s).user_tower(prefix))
        self._item = jax.jit(lambda s, posts, authors: nnx.merge(graphdef, s).item_tower(posts, authors))
        self._state = state

    def user_vectors(self, requests: RequestBatch) -> np.ndarray:  # [B, D]
        """Unit user vectors after each request's whole history (candidates are ignored)."""
        batch = featurize(requests, self.config.model).prefix
        n = batch.user_hashes.shape[0]
        padded = jax.tree.map(lambda x: _pad_rows(np.asarray(x), _bucket(n)), batch)
        return np.asarray(self._user(self._state, padded))[:n]

    def item_vectors(self, post_ids: np.ndarray, author_ids: np.ndarray) -> np.ndarray:  # [n, D]
        mc = self.config.model
        posts = hash_ids(post_ids, mc.post_buckets, hash_seeds(mc.hash_seed, "post", mc.num_hashes), "post_id")
        authors = hash_ids(
            author_ids, mc.author_buckets, hash_seeds(mc.hash_seed, "author", mc.num_hashes), "author_id"
        )
        for name, ids in (("post_id", post_ids), ("author_id", author_ids)):
            if np.any(np.asarray(ids) == 0):
                raise ValueError(f"{name}: ids must be positive (0 is padding)")
        n = posts.shape[0]
        size = _bucket(n)
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
        if self.index is None:
            raise ValueError("index: this retriever has no corpus index (run `phoenix index` first)")
        n = requests.user_id.shape[0]
        rows = [np.zeros(0, np.int64) for _ in range(n)]
        for i in range(n):
            parts = [rows[i]]
            if exclude_post_ids is not None:
                parts.append(self.index.rows_of(exclude_post_ids[i]))
            if exclude_author_ids is not None:
                parts.append(self.index.rows_by_authors(exclude_author_ids[i]))
            rows[i] = np.unique(np.concatenate(parts))
        chunk = self.config.retrieval.search_chunk
        return self.index.search(self.user_vectors(requests), k, rows, created_after, created_at_or_before, chunk)


def default_index_path(workdir: str | Path) -> Path:
    return Path(workdir) / "retrieval" / "index.npz"

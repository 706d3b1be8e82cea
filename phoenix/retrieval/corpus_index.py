"""A corpus of item vectors and exact top-K search over it.

    index = CorpusIndex.build(item_tower_fn, post_ids, author_ids, created_s)
    index.save("retrieval/index.npz");  index = CorpusIndex.load(...)
    post_ids, scores = index.search(user_vectors, k=1000, exclude_ids=[seen, ...])

Search is exact: the corpus is cut into fixed-size chunks, each scored by one
matrix product and reduced with `jax.lax.top_k`, and the running best K is
merged chunk by chunk inside one `lax.scan`. The chunk holds about
`block_scores` scores across the queries, so working memory does not grow
with the corpus. Exclusions (already seen, in-network, a time window)
are masks applied inside the chunk, so an excluded post can never come back.

The file is a NumPy `.npz` (read with `allow_pickle=False`) holding the arrays
and a JSON header with a format name and version.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

FORMAT_NAME = "phoenix-corpus-index"
FORMAT_VERSION = 1
_ARRAYS = ("post_ids", "author_ids", "created_s", "vectors")
NO_TIME = np.iinfo(np.int64).min  # created_s of an item whose creation time is unknown


class CorpusIndexError(ValueError):
    """An index file is missing, corrupt or of another format (names the file)."""


_INT64_MAX = np.iinfo(np.int64).max
_MAX_CHUNK = 1 << 18
_INT32 = np.iinfo(np.int32)


def _device_times(created: np.ndarray, base: int) -> np.ndarray:
    """int64 seconds -> int32 seconds since `base` (JAX runs 32-bit); NO_TIME -> int32 min.

    Offsets beyond ±68 years saturate, which only ever widens a bound past every item.
    """
    rel = np.clip(created.astype(np.float64) - base, _INT32.min + 1, _INT32.max).astype(np.int32)
    return np.where(created == NO_TIME, _INT32.min, rel).astype(np.int32)


def power_of_two_bucket(n: int, minimum: int = 16) -> int:
    """The smallest power of two >= n (and >= minimum): padded shapes that reuse compiled programs."""
    return max(minimum, 1 << max(0, n - 1).bit_length())


@dataclasses.dataclass
class CorpusIndex:
    post_ids: np.ndarray  # [N] int64, unique
    author_ids: np.ndarray  # [N] int64
    created_s: np.ndarray  # [N] int64 (NO_TIME when unknown)
    vectors: np.ndarray  # [N, D] float32, unit rows
    meta: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.post_ids.shape[0]
        if n == 0:
            raise ValueError("corpus: the corpus is empty; an index needs at least one item")
        if self.vectors.ndim != 2 or self.vectors.shape[0] != n:
            raise ValueError(f"vectors: expected shape [{n}, D], got {self.vectors.shape}")
        for name in ("author_ids", "created_s"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name}: expected shape [{n}], got {getattr(self, name).shape}")
        if not np.all(np.isfinite(self.vectors)):
            raise ValueError("vectors: contain NaN or infinite values")
        # Sorted views for id -> row lookups, built once (exclusions are resolved per request).
        self._id_order = np.argsort(self.post_ids, kind="stable")
        self._sorted_ids = self.post_ids[self._id_order]
        duplicate = np.flatnonzero(self._sorted_ids[1:] == self._sorted_ids[:-1])
        if duplicate.size:
            raise ValueError(
                f"post_ids: post {int(self._sorted_ids[duplicate[0]])} appears more than once in the corpus"
            )
        self._author_order = np.argsort(self.author_ids, kind="stable")
        self._sorted_authors = self.author_ids[self._author_order]
        self._device: tuple = ()
        known = self.created_s[self.created_s != NO_TIME]
        self._time_base = int(known.min()) if known.size else 0

    def __len__(self) -> int:
        return int(self.post_ids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    # ---- building, saving, loading -------------------------------------------------------

    @classmethod
    def build(
        cls,
        embed: Callable[[np.ndarray, np.ndarray], np.ndarray],
        post_ids: np.ndarray,
        author_ids: np.ndarray,
        created_s: np.ndarray | None = None,
        batch_size: int = 8192,
        meta: dict | None = None,
    ) -> CorpusIndex:
        """Embed a corpus in batches with `embed(post_ids, author_ids) -> [n, D]`."""
        post_ids = np.asarray(post_ids, np.int64)
        author_ids = np.asarray(author_ids, np.int64)
        if post_ids.size == 0:
            raise ValueError("corpus: the corpus is empty; an index needs at least one item")
        created = np.full(post_ids.shape, NO_TIME) if created_s is None else np.asarray(created_s, np.int64)
        chunks = [embed(post_ids[i : i + batch_size], author_ids[i : i + batch_size])
                  for i in range(0, post_ids.size, batch_size)]
        vectors = np.concatenate([np.asarray(c, np.float32) for c in chunks])
        return cls(post_ids, author_ids, created, vectors, dict(meta or {}))

    def save(self, path: str | Path) -> Path:
        """Write atomically: a killed save leaves the previous index (or none), never half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "size": len(self), "dim": self.dim,
                  "meta": self.meta}
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, header=np.frombuffer(json.dumps(header).encode(), np.uint8),
                     **{name: getattr(self, name) for name in _ARRAYS})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> CorpusIndex:
        path = Path(path)
        if not path.is_file():
            raise CorpusIndexError(f"{path}: index file not found (run `phoenix index` first)")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in ("header", *_ARRAYS)}
            header = json.loads(arrays.pop("header").tobytes().decode())
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as err:
            raise CorpusIndexError(f"{path}: not a readable Phoenix index: {err}") from err
        if header.get("format") != FORMAT_NAME or header.get("version") != FORMAT_VERSION:
            raise CorpusIndexError(f"{path}: unsupported index format {header.get('format')!r} "
                              f"version {header.get('version')!r} (expected {FORMAT_NAME} {FORMAT_VERSION})")
        try:
            return cls(*(arrays[name] for name in _ARRAYS), meta=header.get("meta", {}))
        except ValueError as err:
            raise CorpusIndexError(f"{path}: {err}") from err

    # ---- search -------------------------------------------------------------------------------

    def rows_of(self, post_ids: np.ndarray) -> np.ndarray:
        """Corpus rows of the given ids; ids not in the corpus are skipped (nothing to exclude)."""
        ids = np.asarray(post_ids, np.int64).ravel()
        where = np.minimum(np.searchsorted(self._sorted_ids, ids), len(self) - 1)
        return self._id_order[where[self._sorted_ids[where] == ids]]

    def rows_by_authors(self, author_ids: Sequence[int]) -> np.ndarray:
        """Corpus rows of every post by the given authors (binary search, not a corpus scan)."""
        authors = np.asarray(list(author_ids), np.int64)
        starts = np.searchsorted(self._sorted_authors, authors, side="left")
        ends = np.searchsorted(self._sorted_authors, authors, side="right")
        return np.concatenate([self._author_order[a:b] for a, b in zip(starts, ends)] + [np.zeros(0, np.int64)])

    def _on_device(self) -> tuple:
        """Vectors, times and validity on the device once, padded to a multiple of every chunk size."""
        if not self._device:
            n = len(self)
            pad = -n % min(_MAX_CHUNK, power_of_two_bucket(n, minimum=256))
            vectors = np.concatenate([self.vectors, np.zeros((pad, self.dim), np.float32)])
            created = _device_times(np.concatenate([self.created_s, np.full(pad, NO_TIME)]), self._time_base)
            self._device = (jnp.asarray(vectors), jnp.asarray(created), jnp.asarray(np.arange(n + pad) < n))
        return self._device

    def search(
        self,
        user_vectors: np.ndarray,  # [Q, D]
        k: int,
        exclude_rows: Sequence[np.ndarray] | None = None,
        created_after: int | None = None,
        created_at_or_before: int | None = None,
        block_scores: int = 1 << 22,
    ) -> tuple[np.ndarray, np.ndarray]:  # post ids [Q, k], scores [Q, k] (-inf and id 0 where nothing was left)
        """`search_rows` with post ids in place of corpus rows."""
        rows, scores = self.search_rows(user_vectors, k, exclude_rows, created_after, created_at_or_before,
                                        block_scores)
        return np.where(rows >= 0, self.post_ids[np.maximum(rows, 0)], 0), scores

    def search_rows(
        self,
        user_vectors: np.ndarray,  # [Q, D]
        k: int,
        exclude_rows: Sequence[np.ndarray] | None = None,
        created_after: int | None = None,
        created_at_or_before: int | None = None,
        block_scores: int = 1 << 22,
    ) -> tuple[np.ndarray, np.ndarray]:  # corpus rows [Q, k], scores [Q, k] (-1 and -inf where nothing was left)
        """Exact top-k by dot product per query, best first.

        `exclude_rows[q]` are corpus rows query q must never get; the time
        bounds keep items created in (created_after, created_at_or_before].
        Items of unknown creation time pass the time bounds. Working memory is
        about `block_scores` float32 scores, whatever the corpus size.
        """
        users = np.asarray(user_vectors, np.float32)
        if users.ndim != 2 or users.shape[1] != self.dim:
            raise ValueError(f"user_vectors: expected shape [Q, {self.dim}], got {users.shape}")
        if not np.all(np.isfinite(users)):
            raise ValueError("user_vectors: contain NaN or infinite values")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k: expected a positive integer, got {k!r}")
        if k > len(self):
            raise ValueError(f"k: {k} is larger than the corpus ({len(self)} items)")
        q = users.shape[0]
        exclude_rows = list(exclude_rows) if exclude_rows is not None else [np.zeros(0, np.int64)] * q
        if len(exclude_rows) != q:
            raise ValueError(f"exclude_rows: expected one array per query ({q}), got {len(exclude_rows)}")
        width = power_of_two_bucket(max((r.size for r in exclude_rows), default=0))
        padded_rows = np.full((q, width), -1, np.int64)
        for i, rows in enumerate(exclude_rows):
            padded_rows[i, : rows.size] = rows
        # Corpus rows per chunk: about `block_scores` scores in flight across all queries,
        # at least K (and 256), at most 2^18 rows or the (bucketed) corpus.
        per_query = 1 << max(0, (block_scores // q).bit_length() - 1)
        whole_corpus = power_of_two_bucket(len(self), minimum=256)
        chunk = min(max(per_query, power_of_two_bucket(k), 256), _MAX_CHUNK, whole_corpus)
        vectors, created, valid = self._on_device()
        lo = _device_times(np.array([NO_TIME + 1 if created_after is None else created_after]), self._time_base)[0]
        hi = _device_times(np.array([_INT64_MAX if created_at_or_before is None else created_at_or_before]),
                           self._time_base)[0]
        scores, rows = _chunked_top_k(jnp.asarray(users), vectors, created, valid, jnp.asarray(padded_rows),
                                      lo, hi, k=int(k), chunk=chunk)
        scores, rows = np.asarray(scores), np.asarray(rows, np.int64)
        found = np.isfinite(scores)
        return np.where(found, rows, -1), np.where(found, scores, -np.inf)


@functools.partial(jax.jit, static_argnames=("k", "chunk"))
def _chunked_top_k(
    users: jnp.ndarray,  # [Q, D]
    vectors: jnp.ndarray,  # [P, D], P a multiple of chunk
    created: jnp.ndarray,  # [P] int32 seconds since the index's time base
    valid: jnp.ndarray,  # [P]
    excluded: jnp.ndarray,  # [Q, E] corpus rows, -1 padding
    created_after: jnp.ndarray,  # scalar int32, same base
    created_at_or_before: jnp.ndarray,  # scalar int32
    *,
    k: int,
    chunk: int,
) -> tuple[jnp.ndarray, jnp.ndarray]:  # scores [Q, k], rows [Q, k]
    q, steps = users.shape[0], vectors.shape[0] // chunk
    no_time = jnp.asarray(_INT32.min, created.dtype)
    query = jnp.arange(q)[:, None]  # [Q, 1]

    def step(best, inputs):
        best_scores, best_rows = best  # [Q, k]
        index, block, times, ok = inputs  # block [chunk, D]
        offset = index * chunk
        scores = users @ block.T  # [Q, chunk]
        in_window = (times == no_time) | ((times > created_after) & (times <= created_at_or_before))
        scores = jnp.where((ok & in_window)[None], scores, -jnp.inf)
        local = excluded - offset  # [Q, E]
        local = jnp.where((excluded >= 0) & (local >= 0) & (local < chunk), local, chunk)  # chunk = dropped
        scores = scores.at[query, local].set(-jnp.inf, mode="drop")
        top_scores, top_local = jax.lax.top_k(scores, min(k, chunk))  # [Q, k']
        merged_scores = jnp.concatenate([best_scores, top_scores], axis=1)  # [Q, k + k']
        merged_rows = jnp.concatenate([best_rows, top_local + offset], axis=1)
        keep_scores, keep = jax.lax.top_k(merged_scores, k)  # [Q, k]
        return (keep_scores, jnp.take_along_axis(merged_rows, keep, axis=1)), None

    init = (jnp.full((q, k), -jnp.inf, jnp.float32), jnp.full((q, k), -1, jnp.int32))
    blocks = (
        jnp.arange(steps, dtype=jnp.int32),
        vectors.reshape(steps, chunk, vectors.shape[1]),  # [S, chunk, D]
        created.reshape(steps, chunk),
        valid.reshape(steps, chunk),
    )
    (scores, rows), _ = jax.lax.scan(step, init, blocks)
    return scores, rows

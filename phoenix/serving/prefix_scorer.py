"""Compiled cached-prefix scoring for requests of any size, one user or many.

`PrefixScorer(model).probabilities(batch)` runs the user + history prefix
once per request and scores the candidates against its cached keys and values
in chunks. Shapes are padded to a few buckets so that a stream of requests of
every size reuses a handful of compiled programs:

* history: trimmed to the smallest history bucket holding every real item
  (padding after the last item is masked anyway, so this changes no logit);
* candidates: chunks of `max_chunk`, the last one padded up to the smallest
  chunk bucket that fits, so 1,500 candidates cost 3 x 512, not 2,048.

The model is split into graph and state once and run through `jax.jit`:
`nnx.jit` re-walks the module graph on every call, which costs milliseconds
per request on a CPU. With several local devices the users of a batch are
spread over them along a `data` mesh axis.
"""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from phoenix.data.batch import CandidateBatch, PrefixBatch, RankerBatch
from phoenix.model.ranker import PhoenixRanker, PrefixCache

CHUNK_BUCKETS = (16, 64, 256, 512, 1024, 1536, 2048)


def history_buckets(history_len: int) -> tuple[int, ...]:
    """H/8, H/4, H/2 and H: short histories run a shorter prefix."""
    return tuple(sorted({max(1, history_len >> shift) for shift in (3, 2, 1, 0)}))


def chunk_plan(num_candidates: int, buckets: tuple[int, ...] = CHUNK_BUCKETS) -> list[tuple[int, int, int]]:
    """(start, stop, padded size) of each chunk; every padded size is a bucket."""
    largest = buckets[-1]
    plan = []
    for start in range(0, num_candidates, largest):
        stop = min(start + largest, num_candidates)
        plan.append((start, stop, next(b for b in buckets if b >= stop - start)))
    return plan


def _pad_axis(array: np.ndarray, axis: int, size: int) -> np.ndarray:
    pad = [(0, 0)] * array.ndim
    pad[axis] = (0, size - array.shape[axis])
    return np.pad(array, pad)


def _candidate_chunk(candidates: CandidateBatch, start: int, stop: int, size: int, rows: int) -> CandidateBatch:
    """Candidates [start, stop) padded to `size` slots and `rows` users (padding is id 0, masked)."""
    return jax.tree.map(lambda x: _pad_axis(_pad_axis(np.asarray(x)[:, start:stop], 1, size), 0, rows), candidates)


class PrefixScorer:
    """A ranker compiled for serving: P(action) [B, C, A] for host-side batches."""

    def __init__(self, model: PhoenixRanker, chunk_buckets: tuple[int, ...] = CHUNK_BUCKETS):
        self.model = model
        self.config = model.config
        self.chunk_buckets = tuple(sorted(chunk_buckets))
        self.history_buckets = history_buckets(model.config.history_len)
        graphdef, state = nnx.split(model)
        devices = jax.local_devices()
        self.mesh = Mesh(np.array(devices), ("data",))
        self.state = jax.device_put(state, NamedSharding(self.mesh, PartitionSpec()))
        self._by_user = NamedSharding(self.mesh, PartitionSpec("data"))

        def first(state: nnx.State, prefix: PrefixBatch, candidates: CandidateBatch):
            """The prefix and the first chunk in one program: most requests need nothing more."""
            model = nnx.merge(graphdef, state)
            cache = model.encode_prefix(prefix)
            return cache, jax.nn.sigmoid(model.score_cached(cache, candidates))  # probs [B, c, A]

        def more(state: nnx.State, cache: PrefixCache, candidates: CandidateBatch) -> jax.Array:
            return jax.nn.sigmoid(nnx.merge(graphdef, state).score_cached(cache, candidates))  # [B, c, A]

        self._first = jax.jit(first)
        self._more = jax.jit(more)

    @property
    def num_devices(self) -> int:
        return self.mesh.devices.size

    def _history_bucket(self, batch: RankerBatch) -> int:
        length = int(np.max(np.sum(np.asarray(batch.history_valid), axis=1), initial=0))
        return next(b for b in self.history_buckets if b >= length)

    def _place(self, tree):
        # One device: jit takes host arrays directly, which is cheaper than an explicit placement.
        return tree if self.num_devices == 1 else jax.device_put(tree, self._by_user)

    def prepare(self, batch: RankerBatch) -> tuple[PrefixBatch, list[tuple[int, CandidateBatch]]]:
        """Inputs of one call: the trimmed, padded prefix and (real count, padded chunk) per chunk."""
        b, c = batch.candidates.cutoff.shape
        rows = -(-b // self.num_devices) * self.num_devices  # users padded to fill every device
        h = self._history_bucket(batch)
        full = batch.prefix
        prefix = PrefixBatch(  # history trimmed to its bucket
            user_hashes=np.asarray(full.user_hashes),
            history_post_hashes=np.asarray(full.history_post_hashes)[:, :h],
            history_author_hashes=np.asarray(full.history_author_hashes)[:, :h],
            history_actions=np.asarray(full.history_actions)[:, :h],
            history_surface=np.asarray(full.history_surface)[:, :h],
        )
        prefix = self._place(jax.tree.map(lambda x: _pad_axis(x, 0, rows), prefix))
        chunks = [
            (stop - start, self._place(_candidate_chunk(batch.candidates, start, stop, size, rows)))
            for start, stop, size in chunk_plan(c, self.chunk_buckets)
        ]
        return prefix, chunks

    def run(self, prefix: PrefixBatch, chunks: list[tuple[int, CandidateBatch]]) -> list[jax.Array]:
        """Dispatch the prefix with the first chunk, then every further chunk; returns without waiting."""
        cache, probs = self._first(self.state, prefix, chunks[0][1])
        return [probs] + [self._more(self.state, cache, chunk) for _, chunk in chunks[1:]]

    def flops(self, batch: RankerBatch) -> float:
        """XLA's count of floating-point operations for one `probabilities(batch)` call."""
        prefix, chunks = self.prepare(batch)
        first = self._first.lower(self.state, prefix, chunks[0][1]).compile()
        total = first.cost_analysis().get("flops", 0.0)
        cache = jax.eval_shape(self._first, self.state, prefix, chunks[0][1])[0]
        for _, chunk in chunks[1:]:
            total += self._more.lower(self.state, cache, chunk).compile().cost_analysis().get("flops", 0.0)
        return float(total)

    def probabilities(self, batch: RankerBatch) -> np.ndarray:  # [B, C, A]
        """Score a validated host (numpy) batch; rows are users, every candidate isolated."""
        prefix, chunks = self.prepare(batch)
        pending = self.run(prefix, chunks)
        b = batch.candidates.cutoff.shape[0]
        out = [np.asarray(probs)[:b, :n] for (n, _), probs in zip(chunks, pending)]  # all dispatched; now wait
        return np.concatenate(out, axis=1)  # [B, C, A]

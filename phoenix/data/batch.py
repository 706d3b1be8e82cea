"""The ranker's input: raw id requests and their hashed, model-ready form.

`RequestBatch` holds what a caller has (raw ids, oldest history first, right
padded with id 0). `featurize` validates it and hashes the ids into a
`RankerBatch`, the pytree the jitted model consumes. Validation happens here,
on the host, so a bad request fails with the field named instead of becoming
silently wrong scores.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from phoenix.config import ModelConfig
from phoenix.data.hashing import hash_ids, hash_seeds


@dataclasses.dataclass
class RequestBatch:
    """Raw ids for B requests; history length H, C candidates; id 0 is padding."""

    user_id: np.ndarray  # [B]
    history_post_id: np.ndarray  # [B, H]
    history_author_id: np.ndarray  # [B, H]
    history_actions: np.ndarray  # [B, H, A] multi-hot 0/1
    history_surface: np.ndarray  # [B, H]
    candidate_post_id: np.ndarray  # [B, C]
    candidate_author_id: np.ndarray  # [B, C]
    candidate_surface: np.ndarray  # [B, C]
    candidate_cutoff: np.ndarray  # [B, C] history items each candidate may see

    def take(self, rows: np.ndarray) -> RequestBatch:
        """The requests at `rows` (a training step's examples, an evaluation batch)."""
        return RequestBatch(**{f.name: getattr(self, f.name)[rows] for f in dataclasses.fields(self)})


@struct.dataclass
class PrefixBatch:
    """The user + history half of a hashed request: what the prefix cache is computed from."""

    user_hashes: jnp.ndarray  # [B, K]
    history_post_hashes: jnp.ndarray  # [B, H, K]
    history_author_hashes: jnp.ndarray  # [B, H, K]
    history_actions: jnp.ndarray  # [B, H, A] int8 0/1
    history_surface: jnp.ndarray  # [B, H]

    @property
    def history_valid(self) -> jnp.ndarray:  # [B, H]
        return self.history_post_hashes[..., 0] != 0


@struct.dataclass
class CandidateBatch:
    """The candidate half of a hashed request: what is scored against a cached prefix."""

    post_hashes: jnp.ndarray  # [B, C, K]
    author_hashes: jnp.ndarray  # [B, C, K]
    surface: jnp.ndarray  # [B, C]
    cutoff: jnp.ndarray  # [B, C] history items each candidate may see


@struct.dataclass
class RankerBatch:
    """Hashed, model-ready request batch (a JAX pytree): a prefix and its candidates."""

    prefix: PrefixBatch  # user + history [B, 1+H]
    candidates: CandidateBatch  # [B, C]

    def take(self, rows: np.ndarray) -> RankerBatch:
        """Rows of a host-side (numpy) batch, e.g. one training step's examples."""
        return jax.tree.map(lambda x: x[rows], self)

    @property
    def history_valid(self) -> jnp.ndarray:  # [B, H]
        return self.prefix.history_valid

    @property
    def candidate_valid(self) -> jnp.ndarray:  # [B, C]
        return self.candidates.post_hashes[..., 0] != 0


def _check_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")


def _check_int(name: str, array: np.ndarray) -> None:
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integers, got dtype {array.dtype}")


def validate_request(batch: RequestBatch, config: ModelConfig) -> None:
    """Raise ValueError naming the field for any malformed part of a request batch."""
    arrays = {f.name: np.asarray(getattr(batch, f.name)) for f in dataclasses.fields(batch)}
    if arrays["user_id"].ndim != 1:
        raise ValueError(f"user_id: expected shape [B], got {arrays['user_id'].shape}")
    (b,) = arrays["user_id"].shape
    if arrays["history_post_id"].ndim != 2 or arrays["candidate_post_id"].ndim != 2:
        raise ValueError("history_post_id / candidate_post_id: expected shapes [B, H] and [B, C]")
    h = arrays["history_post_id"].shape[1]
    c = arrays["candidate_post_id"].shape[1]
    if h > config.history_len:
        raise ValueError(f"history_post_id: history of {h} items exceeds model.history_len={config.history_len}")
    if c < 1:
        raise ValueError("candidate_post_id: a request needs at least one candidate slot")
    expected = {
        "history_post_id": (b, h),
        "history_author_id": (b, h),
        "history_actions": (b, h, config.num_actions),
        "history_surface": (b, h),
        "candidate_post_id": (b, c),
        "candidate_author_id": (b, c),
        "candidate_surface": (b, c),
        "candidate_cutoff": (b, c),
    }
    for name, shape in expected.items():
        _check_shape(name, arrays[name], shape)
    for name, array in arrays.items():
        if name == "history_actions" and array.dtype.kind == "f":
            if not np.all(np.isfinite(array)):
                raise ValueError("history_actions: contains NaN or infinite values")
            continue
        _check_int(name, array)
    if not np.all((arrays["history_actions"] == 0) | (arrays["history_actions"] == 1)):
        raise ValueError("history_actions: must be a 0/1 multi-hot")
    for name in ("history_surface", "candidate_surface"):
        bad = (arrays[name] < 0) | (arrays[name] >= config.num_surfaces)
        if bad.any():
            raise ValueError(f"{name}: surfaces must be in [0, {config.num_surfaces}), got {arrays[name][bad][0]}")
    valid = arrays["history_post_id"] != 0
    lengths = valid.sum(axis=1)  # [B]
    if not np.array_equal(valid, np.arange(h)[None, :] < lengths[:, None]):
        raise ValueError("history_post_id: padding (id 0) must come after all real history items")
    cutoff = arrays["candidate_cutoff"]
    bad = (cutoff < 0) | (cutoff > lengths[:, None])
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(
            f"candidate_cutoff: must be in [0, history length]; request {row} has history length "
            f"{int(lengths[row])} and cutoff {int(cutoff[bad][0])}"
        )


def hash_table_ids(ids: np.ndarray, table: str, field: str, config: ModelConfig) -> np.ndarray:  # [..., K]
    """Hash ids of one table ("user", "post" or "author") with the config's seeds and bucket count."""
    buckets = {"user": config.user_buckets, "post": config.post_buckets, "author": config.author_buckets}[table]
    hashes = hash_ids(ids, buckets, hash_seeds(config.hash_seed, table, config.num_hashes), field)  # checks the ids
    if (table == "user" and not config.user_ids) or (table == "author" and not config.author_ids):
        return np.zeros_like(hashes)  # a table the model does not embed: the padding row for everyone
    return hashes


def featurize(batch: RequestBatch, config: ModelConfig) -> RankerBatch:
    """Validate a raw request batch and hash its ids for the model.

    The result holds host (numpy) arrays: jit moves them to the device, and a
    large featurized set can be sliced per step without hashing again.
    """
    validate_request(batch, config)
    hashed = functools.partial(hash_table_ids, config=config)

    prefix = PrefixBatch(
        user_hashes=hashed(batch.user_id, "user", "user_id"),
        history_post_hashes=hashed(batch.history_post_id, "post", "history_post_id"),
        history_author_hashes=hashed(batch.history_author_id, "author", "history_author_id"),
        history_actions=np.asarray(batch.history_actions, dtype=np.int8),
        history_surface=np.asarray(batch.history_surface, dtype=np.int32),
    )
    candidates = CandidateBatch(
        post_hashes=hashed(batch.candidate_post_id, "post", "candidate_post_id"),
        author_hashes=hashed(batch.candidate_author_id, "author", "candidate_author_id"),
        surface=np.asarray(batch.candidate_surface, dtype=np.int32),
        cutoff=np.asarray(batch.candidate_cutoff, dtype=np.int32),
    )
    return RankerBatch(prefix, candidates)

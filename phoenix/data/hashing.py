"""Multi-hash id embedding indices: no vocabulary to build or maintain.

Every id (user, post, author) is mapped by K independent seeded hash functions
to K buckets of a table; the model concatenates the K rows. Two ids collide in
all K tables only with probability ~1/N^K, so a small table serves a huge id
space. The hash is a fixed integer mix (splitmix64 finaliser) over uint64, so
it is identical across processes and machines (Python's `hash()` is not).
Id 0 is padding and always maps to bucket 0; real ids map to 1..N-1.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)

# Distinct salts so that user 7, post 7 and author 7 hash differently.
TABLE_SALTS = {"user": 0x5553, "post": 0x504F, "author": 0x4155}


def splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def hash_seeds(base_seed: int, table: str, num_hashes: int) -> np.ndarray:
    """Per-hash seeds of one table, derived deterministically from the config seed."""
    if table not in TABLE_SALTS:
        raise ValueError(f"table: unknown id table {table!r} (known: {', '.join(TABLE_SALTS)})")
    keys = np.arange(num_hashes, dtype=np.uint64) + np.uint64(TABLE_SALTS[table] << 16)
    return splitmix64(keys ^ np.uint64(base_seed & 0xFFFFFFFFFFFFFFFF))


def hash_ids(ids: np.ndarray, num_buckets: int, seeds: np.ndarray, field: str = "ids") -> np.ndarray:
    """Map integer ids [...] to bucket indices [..., K] in [0, num_buckets).

    Raises ValueError naming `field` for negative or non-integer ids.
    """
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise ValueError(f"{field}: ids must be integers, got dtype {ids.dtype}")
    if ids.dtype.kind == "i" and ids.size and ids.min() < 0:
        raise ValueError(f"{field}: ids must be >= 0 (0 is padding), got {int(ids.min())}")
    if num_buckets < 2:
        raise ValueError(f"{field}: num_buckets must be at least 2, got {num_buckets}")
    x = ids.astype(np.uint64)[..., None]  # [..., 1]
    with np.errstate(over="ignore"):
        mixed = splitmix64(x ^ seeds.astype(np.uint64))  # [..., K]
    buckets = (mixed % np.uint64(num_buckets - 1)).astype(np.int64) + 1  # [..., K]
    return np.where(x == 0, 0, buckets).astype(np.int32)  # [..., K]

"""Raw ids of any kind -> the int64 ids the model hashes: no vocabulary to build or keep.

A positive integer is its own id, and so is its decimal text ("42" is 42, so
a CSV and a Parquet file of the same log agree). Anything else (any other
string, 0, a negative integer) becomes a 63-bit fingerprint of its UTF-8 text: splitmix64 folded
over the bytes eight at a time, then the length. It is a fixed function of the
bytes, identical in every process and on every machine (Python's `hash()` is
salted per process), and vectorised over whole Arrow columns: one numpy pass
per eight bytes of the longest id, never a Python loop per row. Two distinct
ids share a fingerprint with probability ~n²/2^64.

The same function serves training (`phoenix import`) and serving (`rank()`,
`phoenix score`), so "user-42" in a log and in a request is one id.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from phoenix.data.hashing import splitmix64

_SEED = np.uint64(0x50484F454E495821)  # fixed: changing it changes every string id
_LOW63 = np.uint64((1 << 63) - 1)
_DECIMAL = r"^[1-9][0-9]{0,17}$"  # a positive integer below 2^63, written plainly


def fingerprint_strings(values: pa.Array) -> np.ndarray:  # [N] int64 in [1, 2^63)
    """Fingerprints of a string (or binary) Arrow array without nulls."""
    values = pc.cast(values, pa.large_binary()) if not pa.types.is_large_binary(values.type) else values
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    n = len(values)
    _, offsets_buf, data_buf = values.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64)[values.offset : values.offset + n + 1]  # [N+1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    data = np.concatenate([data, np.zeros(8, np.uint8)])  # a whole word can be read past the end
    starts, lengths = offsets[:-1], np.diff(offsets)  # [N]
    h = np.full(n, _SEED, np.uint64)  # [N]
    shifts = np.arange(8, dtype=np.uint64) * np.uint64(8)  # little-endian byte weights
    with np.errstate(over="ignore"):
        for word in range(int(-(-lengths.max(initial=0) // 8))):
            live = lengths > 8 * word  # [N] ids that still have bytes here
            if not live.any():
                break
            pos = starts[live, None] + 8 * word + np.arange(8)  # [n, 8]
            inside = pos < (starts[live] + lengths[live])[:, None]  # [n, 8] bytes of this id only
            chunk = np.where(inside, data[pos], 0).astype(np.uint64)  # [n, 8]
            packed = (chunk << shifts).sum(axis=1, dtype=np.uint64)  # [n]
            h[live] = splitmix64(h[live] ^ packed)
        h = splitmix64(h ^ lengths.astype(np.uint64))  # "a" and "a\0" differ
    return _nonzero63(h)


def _nonzero63(h: np.ndarray) -> np.ndarray:
    """Into [1, 2^63): a valid non-padding int64 id."""
    return ((h % _LOW63) + np.uint64(1)).astype(np.int64)


def encode_ids(values: pa.Array | np.ndarray | list, field: str) -> np.ndarray:  # [N] int64
    """Raw ids (integers or strings, no nulls) -> model ids; errors name `field`."""
    if not isinstance(values, pa.Array | pa.ChunkedArray):
        array = np.asarray(values)
        if array.dtype.kind in "iu":
            values = pa.array(array.astype(np.int64) if array.dtype != np.uint64 else array)
        elif array.dtype.kind in "UO" or array.size == 0:
            try:
                values = pa.array(array.tolist(), pa.string()) if array.size else pa.array([], pa.int64())
            except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
                raise ValueError(f"{field}: ids must be integers or strings ({err})") from err
        else:
            raise ValueError(f"{field}: ids must be integers or strings, got dtype {array.dtype}")
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count:
        raise ValueError(f"{field}: {values.null_count} missing (null) id(s)")
    kind = values.type
    if pa.types.is_integer(kind):
        ints = values.to_numpy(zero_copy_only=False)
        by_text = ints < 1  # 0 is padding and negatives are not ids; nor is a uint64 past int64
        if ints.dtype == np.uint64:
            by_text |= ints >= np.uint64(1 << 63)
        out = np.where(by_text, 0, ints).astype(np.int64)
        if by_text.any():
            out[by_text] = fingerprint_strings(pc.cast(pa.array(ints[by_text]), pa.string()))
        return out
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        out = fingerprint_strings(values)
        decimal = pc.match_substring_regex(values, _DECIMAL).to_numpy(zero_copy_only=False)  # [N] bool
        if decimal.any():
            out[decimal] = pc.cast(pc.filter(values, pa.array(decimal)), pa.int64()).to_numpy()
        return out
    raise ValueError(f"{field}: ids must be integers or strings, got {kind}")


def encode_id(value: int | str, field: str) -> int:
    """One raw id (a request's user or a candidate) -> its model id."""
    if isinstance(value, bool) or not isinstance(value, int | str | np.integer):
        raise ValueError(f"{field}: an id must be an integer or a string, got {value!r}")
    if isinstance(value, int) and not -(1 << 63) <= value < 1 << 64:  # beyond any integer column: by its text
        value = str(value)
    kind = pa.uint64() if isinstance(value, int) and value >= 1 << 63 else None
    return int(encode_ids(pa.array([value], kind), field)[0])

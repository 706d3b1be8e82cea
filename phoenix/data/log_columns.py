"""Converting one batch column of a log (ids, labels, times, surfaces) to numpy, row by row checked.

Each converter returns the values and a `bad` mask [N] of rows it could not
convert; the import counts those rows per reason and reports where they are.
A column of the wrong type altogether (a float id column) fails naming it.
All work is on whole Arrow arrays: no Python loop per row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from phoenix.data.ids import encode_ids

_INTEGER = r"^-?[0-9]{1,18}$"
_ISO = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$"
_ZONED = r"(Z|[+-]\d{2}:?\d{2})$"


def _is_text(array: pa.Array) -> bool:
    return pa.types.is_string(array.type) or pa.types.is_large_string(array.type)


def _missing(array: pa.Array) -> np.ndarray:  # [N] bool: null, or empty text
    missing = array.is_null().to_numpy(zero_copy_only=False)
    if _is_text(array):
        missing |= pc.fill_null(pc.equal(pc.utf8_trim_whitespace(array), ""), True).to_numpy(zero_copy_only=False)
    return missing


def ids(array: pa.Array, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Ids (integers or text) -> model ids [N]; bad: missing."""
    if not (pa.types.is_integer(array.type) or _is_text(array)):
        raise TypeError(f"column {column!r}: ids must be integers or strings, got {array.type}")
    bad = _missing(array)
    filled = pc.if_else(pa.array(bad), pa.scalar("0" if _is_text(array) else 1, array.type), array)
    return encode_ids(filled, column), bad


def labels(array: pa.Array, column: str) -> tuple[np.ndarray, np.ndarray]:
    """0/1 labels (integers, booleans, 0.0/1.0, or the text "0"/"1") -> int8 [N]; bad: anything else."""
    if _is_text(array):
        text = pc.utf8_trim_whitespace(array)
        one = pc.fill_null(pc.equal(text, "1"), False).to_numpy(zero_copy_only=False)
        zero = pc.fill_null(pc.equal(text, "0"), False).to_numpy(zero_copy_only=False)
        return one.astype(np.int8), ~(one | zero)
    if pa.types.is_boolean(array.type):
        values = pc.fill_null(array, False).to_numpy(zero_copy_only=False)
        return values.astype(np.int8), array.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        values = pc.fill_null(pc.cast(array, pa.float64()), np.nan).to_numpy(zero_copy_only=False)
        bad = ~((values == 0) | (values == 1))
        return (values == 1).astype(np.int8), bad
    raise TypeError(f"column {column!r}: labels must be 0/1 numbers, booleans or text, got {array.type}")


def times(array: pa.Array, column: str, unit: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times -> (values [N] int64, in_ms [N] bool, bad [N] bool).

    Integer values stay in the log's unit (`in_ms` False) until the import has
    seen them all and `unit` "auto" can decide; ISO text and timestamps are
    converted to milliseconds (naive times are read as UTC).
    """
    n = len(array)
    bad = _missing(array)
    if pa.types.is_timestamp(array.type) or pa.types.is_date(array.type):
        ms = pc.cast(pc.cast(array, pa.timestamp("ms", getattr(array.type, "tz", None))), pa.int64())
        return pc.fill_null(ms, 0).to_numpy(zero_copy_only=False), np.ones(n, bool), bad
    if pa.types.is_integer(array.type):
        if unit == "iso":
            raise TypeError(f"column {column!r}: import.time_unit is 'iso' but the column holds integers")
        return pc.fill_null(pc.cast(array, pa.int64()), 0).to_numpy(zero_copy_only=False), np.zeros(n, bool), bad
    if not _is_text(array):
        raise TypeError(f"column {column!r}: times must be integers, timestamps or ISO 8601 text, got {array.type}")
    text = pc.utf8_trim_whitespace(array)
    integer = pc.fill_null(pc.match_substring_regex(text, _INTEGER), False).to_numpy(zero_copy_only=False)
    integer &= unit != "iso"  # with time_unit "iso", digits are not a time
    values, in_ms = np.zeros(n, np.int64), np.zeros(n, bool)
    if integer.any():
        values[integer] = pc.cast(pc.filter(text, pa.array(integer)), pa.int64()).to_numpy()
    iso = ~integer & ~bad & pc.fill_null(pc.match_substring_regex(text, _ISO), False).to_numpy(zero_copy_only=False)
    if iso.any():
        ms, ok = _iso_ms(pc.filter(text, pa.array(iso)))
        rows = np.flatnonzero(iso)
        values[rows[ok]], in_ms[rows[ok]] = ms[ok], True
        iso[rows[~ok]] = False
    bad |= ~(iso | integer)
    return values, in_ms, bad


def _iso_ms(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """ISO 8601 text -> (milliseconds since the epoch, parsed) per value; a zone suffix is honoured."""
    zoned = pc.match_substring_regex(text, _ZONED).to_numpy(zero_copy_only=False)
    out, ok = np.zeros(len(text), np.int64), np.ones(len(text), bool)
    for mask, kind in ((zoned, pa.timestamp("ms", "UTC")), (~zoned, pa.timestamp("ms"))):
        if not mask.any():
            continue
        part = pc.filter(text, pa.array(mask))
        try:
            out[mask] = pc.cast(pc.cast(part, kind), pa.int64()).to_numpy()
        except pa.ArrowInvalid:  # a well-shaped but impossible date (month 13): find it value by value
            parsed = []
            for value in part.to_pylist():
                try:
                    parsed.append(pc.cast(pc.cast(pa.array([value]), kind), pa.int64())[0].as_py())
                except pa.ArrowInvalid:
                    parsed.append(None)
            rows = np.flatnonzero(mask)
            good = np.array([p is not None for p in parsed])
            out[rows[good]] = np.array([p for p in parsed if p is not None], np.int64)
            ok[rows[~good]] = False
    return out, ok


def surface_names(array: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Surfaces as text [N] (integers written as their digits) and bad [N] (missing)."""
    bad = _missing(array)
    if pa.types.is_integer(array.type):
        array = pc.cast(array, pa.string())
    elif not _is_text(array):
        raise TypeError(f"surfaces must be integers or names, got {array.type}")
    return pc.fill_null(pc.utf8_trim_whitespace(array), ""), bad

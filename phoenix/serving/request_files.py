"""Scoring requests stored as Parquet: schema, checks and vectorised decoding.

One row per user request:

    user_id              int64 or string      (ids are encoded as `phoenix import` encodes a log's)
    history_post_id      list<int64|string>   oldest first
    history_author_id    list<int64|string>   same length as history_post_id
    history_actions      list<list<string>>   action names taken on each history item
    history_surface      list<int>            optional (default 0), same length
    candidate_post_id    list<int64|string>   at least one
    candidate_author_id  list<int64|string>   same length as candidate_post_id
    candidate_surface    list<int>            optional (default 0), same length

Every check names the file and the column and, for content errors, the file's row
(and its row group).
Decoding works on whole Arrow columns (no Python loop per candidate), so it
keeps up with the model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from phoenix.config import ModelConfig
from phoenix.data.batch import RequestBatch
from phoenix.data.ids import encode_ids

ID_LISTS = ("history_post_id", "history_author_id", "candidate_post_id", "candidate_author_id")
OPTIONAL_LISTS = ("history_surface", "candidate_surface")


REQUEST_SCHEMA = pa.schema([
    ("user_id", pa.int64()),
    ("history_post_id", pa.list_(pa.int64())),
    ("history_author_id", pa.list_(pa.int64())),
    ("history_actions", pa.list_(pa.list_(pa.string()))),
    ("history_surface", pa.list_(pa.int32())),
    ("candidate_post_id", pa.list_(pa.int64())),
    ("candidate_author_id", pa.list_(pa.int64())),
    ("candidate_surface", pa.list_(pa.int32())),
])


def requests_table(rows: list[dict]) -> pa.Table:
    """Request dicts (keys as in REQUEST_SCHEMA; surfaces optional) -> an Arrow table to write."""
    leads = {"history_surface": "history_post_id", "candidate_surface": "candidate_post_id"}
    filled = [r | {name: [0] * len(r[lead]) for name, lead in leads.items() if name not in r} for r in rows]
    return pa.Table.from_pylist(filled, schema=REQUEST_SCHEMA)


class RequestFileError(ValueError):
    """A request file that cannot be scored; the message names the file and column."""


def _is_id(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_int_list(t: pa.DataType) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_integer(t.value_type)


def _is_id_list(t: pa.DataType) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and _is_id(t.value_type)


def _is_name_lists(t: pa.DataType) -> bool:
    if not (pa.types.is_list(t) or pa.types.is_large_list(t)):
        return False
    inner = t.value_type
    return (pa.types.is_list(inner) or pa.types.is_large_list(inner)) and (
        pa.types.is_string(inner.value_type) or pa.types.is_large_string(inner.value_type)
    )


def open_request_file(path: Path) -> pq.ParquetFile:
    """Open a request file and check its schema; fail naming the file and the column."""
    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises several types for unreadable files
        raise RequestFileError(f"{path}: not a readable Parquet file ({err})") from err
    schema = parquet.schema_arrow
    expected = {"user_id": (_is_id, "an integer or string id")}
    expected |= {name: (_is_id_list, "a list of integer or string ids") for name in ID_LISTS}
    expected |= {name: (_is_int_list, "a list of integers") for name in OPTIONAL_LISTS}
    expected["history_actions"] = (_is_name_lists, "a list of lists of action names (strings)")
    for name, (check, what) in expected.items():
        if name not in schema.names:
            if name in OPTIONAL_LISTS:
                continue
            raise RequestFileError(f"{path}: column {name!r} is missing (columns: {', '.join(schema.names)})")
        if not check(schema.field(name).type):
            raise RequestFileError(f"{path}: column {name!r} must be {what}, got {schema.field(name).type}")
    return parquet


@dataclasses.dataclass
class DecodedRequests:
    request: RequestBatch  # B users, history padded to the model's history_len
    candidate_count: np.ndarray  # [B] real candidates per user
    truncated_histories: int  # users whose history was cut to the most recent history_len items


@dataclasses.dataclass(frozen=True)
class _Where:
    """Where a part of a request file starts, so an error can name the file's own row."""

    source: str  # the file, and the row group when there is one
    first_row: int  # the file row of the part's row 0

    def fail(self, row: int | np.integer, column: str, what: str) -> RequestFileError:
        return RequestFileError(f"{self.source}, row {self.first_row + int(row)}, column {column!r}: {what}")


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_ids(values: pa.Array, row_of: np.ndarray, column: str, where: _Where) -> np.ndarray:
    """Raw ids (one per `row_of` entry) -> model ids; a null or empty id is an error naming its row."""
    if values.null_count:
        raise where.fail(row_of[_first(values.is_null().to_numpy(zero_copy_only=False))], column, "null id")
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        empty = pc.equal(pc.utf8_length(values), 0).to_numpy(zero_copy_only=False)
        if empty.any():
            raise where.fail(row_of[_first(empty)], column, "empty id")
    return encode_ids(values, column)


def _padded(column: pa.Array, name: str, width: int | None, where: _Where) -> tuple[np.ndarray, np.ndarray]:
    """A list column as a right-padded [N, width] int64 array (keeping the last `width` items) and lengths."""
    if column.null_count:
        raise where.fail(_first(column.is_null().to_numpy(zero_copy_only=False)), name, "null instead of a list")
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64)  # [N]
    row_of = np.repeat(np.arange(len(lengths)), lengths)  # [total] request of each item
    values = column.flatten()
    if name in ID_LISTS:
        values = _check_ids(values, row_of, name, where)
    else:  # surfaces: an index into the model's surface table
        if values.null_count:
            raise where.fail(row_of[_first(values.is_null().to_numpy(zero_copy_only=False))], name, "null surface")
        values = values.to_numpy(zero_copy_only=False)
    values = values.astype(np.int64)
    width = int(lengths.max(initial=0)) if width is None else width
    kept = np.minimum(lengths, width)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) + lengths - kept  # keep the most recent
    out = np.zeros((len(lengths), max(width, 1)), np.int64)
    rows = np.repeat(np.arange(len(lengths)), kept)
    cols = np.arange(kept.sum()) - np.repeat(np.cumsum(kept) - kept, kept)
    out[rows, cols] = values[np.repeat(starts, kept) + cols]
    return out, lengths


def decode_requests(table: pa.Table, config: ModelConfig, source: str, first_row: int = 0) -> DecodedRequests:
    """Arrow rows -> one RequestBatch. Errors name `source` (the file), the file row (`first_row` + the
    table's row) and the column."""
    where = _Where(source, first_row)
    n, h_max = table.num_rows, config.history_len
    column = {name: table.column(name).combine_chunks() for name in table.column_names}
    user = _check_ids(column["user_id"], np.arange(n), "user_id", where)
    history_post, history_len = _padded(column["history_post_id"], "history_post_id", h_max, where)
    candidate_post, candidate_len = _padded(column["candidate_post_id"], "candidate_post_id", None, where)
    c_max = candidate_post.shape[1]
    if (candidate_len == 0).any():
        raise where.fail(_first(candidate_len == 0), "candidate_post_id", "no candidates")

    def matching(name: str, width: int, lengths: np.ndarray) -> np.ndarray:
        lead = "history_post_id" if name.startswith("history_") else "candidate_post_id"
        if name not in column:
            return np.zeros((n, width), np.int64)
        values, got = _padded(column[name], name, width, where)
        if not np.array_equal(got, lengths):
            row = _first(got != lengths)
            raise where.fail(row, name, f"{got[row]} items where {lead} has {lengths[row]}")
        if name in OPTIONAL_LISTS:
            flat = column[name].flatten().to_numpy(zero_copy_only=False)
            bad = (flat < 0) | (flat >= config.num_surfaces)
            if bad.any():
                row = np.repeat(np.arange(n), got)[_first(bad)]
                raise where.fail(row, name, f"surface {flat[bad][0]} outside [0, {config.num_surfaces})")
        return values

    actions = _action_multi_hot(column["history_actions"], history_len, config, where)
    return DecodedRequests(
        request=RequestBatch(
            user_id=user,
            history_post_id=history_post,
            history_author_id=matching("history_author_id", h_max, history_len),
            history_actions=actions,
            history_surface=matching("history_surface", h_max, history_len),
            candidate_post_id=candidate_post,
            candidate_author_id=matching("candidate_author_id", c_max, candidate_len),
            candidate_surface=matching("candidate_surface", c_max, candidate_len),
            candidate_cutoff=np.repeat(np.minimum(history_len, h_max)[:, None], c_max, axis=1),
        ),
        candidate_count=candidate_len,
        truncated_histories=int((history_len > h_max).sum()),
    )


def _action_multi_hot(column: pa.Array, history_len: np.ndarray, config: ModelConfig, where: _Where) -> np.ndarray:
    """list<list<string>> action names -> [N, H, A] int8 multi-hot, most recent H items kept."""
    name = "history_actions"
    if column.null_count:
        raise where.fail(_first(column.is_null().to_numpy(zero_copy_only=False)), name, "null instead of a list")
    per_item = pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
    if not np.array_equal(per_item, history_len):
        row = _first(per_item != history_len)
        raise where.fail(row, name, f"{per_item[row]} items where history_post_id has {history_len[row]}")
    items = column.flatten()  # one list of names per history item
    row_of_item = np.repeat(np.arange(len(history_len)), history_len)  # [items]
    if items.null_count:
        raise where.fail(row_of_item[_first(items.is_null().to_numpy(zero_copy_only=False))], name,
                         "null instead of a list of action names")
    names = items.flatten()
    item_of_name = pc.list_parent_indices(items).to_numpy(zero_copy_only=False)  # flat history item
    index = pc.index_in(names, value_set=pa.array(config.actions)).to_numpy(zero_copy_only=False)
    unknown = np.isnan(index) if index.dtype.kind == "f" else np.zeros(len(names), bool)
    if unknown.any():
        bad = names[_first(unknown)].as_py()
        raise where.fail(row_of_item[item_of_name[_first(unknown)]], name,
                         f"unknown action {bad!r} (heads: {', '.join(config.actions)})")
    index = np.nan_to_num(index).astype(np.int64)
    first_item = np.concatenate([[0], np.cumsum(history_len)[:-1]])
    h_max = config.history_len
    row = row_of_item[item_of_name]  # request of each name
    slot = item_of_name - first_item[row] - np.maximum(history_len - h_max, 0)[row]  # position once cut to h_max
    kept = slot >= 0  # items older than the most recent h_max are cut
    out = np.zeros((len(history_len), h_max, len(config.actions)), np.int8)
    out[row[kept], slot[kept], index[kept]] = 1
    return out

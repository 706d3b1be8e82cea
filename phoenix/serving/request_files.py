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

Every check names the file, the column and, for content errors, the row.
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
    filled = [
        {"history_surface": [0] * len(r["history_post_id"]), "candidate_surface": [0] * len(r["candidate_post_id"])} | r
        for r in rows
    ]
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


def _padded(column: pa.Array, width: int | None, where: str, ids: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A list column as a right-padded [N, width] int64 array (keeping the last `width` items) and lengths."""
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise RequestFileError(f"{where}: column is null in row {row}")
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
    values = column.flatten()
    if values.null_count:
        raise RequestFileError(f"{where}: a list holds a null id")
    values = encode_ids(values, where) if ids else values.to_numpy(zero_copy_only=False)
    values = values.astype(np.int64)
    width = int(lengths.max(initial=0)) if width is None else width
    kept = np.minimum(lengths, width)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) + lengths - kept  # keep the most recent
    out = np.zeros((len(lengths), max(width, 1)), np.int64)
    rows = np.repeat(np.arange(len(lengths)), kept)
    cols = np.arange(kept.sum()) - np.repeat(np.cumsum(kept) - kept, kept)
    out[rows, cols] = values[np.repeat(starts, kept) + cols]
    return out, lengths


def decode_requests(table: pa.Table, config: ModelConfig, where: str) -> DecodedRequests:
    """Arrow rows -> one RequestBatch; `where` (file and first row) prefixes every error."""
    n, h_max = table.num_rows, config.history_len
    column = {name: table.column(name).combine_chunks() for name in table.column_names}
    user = column["user_id"]
    if user.null_count:
        raise RequestFileError(f"{where}: column 'user_id' is null in some row")
    history_post, history_len = _padded(column["history_post_id"], h_max, f"{where}, column 'history_post_id'")
    candidate_post, candidate_len = _padded(column["candidate_post_id"], None, f"{where}, column 'candidate_post_id'")
    c_max = candidate_post.shape[1]
    if (candidate_len == 0).any():
        row = int(np.flatnonzero(candidate_len == 0)[0])
        raise RequestFileError(f"{where}: column 'candidate_post_id' is empty in row {row}")

    def matching(name: str, width: int, lengths: np.ndarray) -> np.ndarray:
        if name not in column:
            return np.zeros((n, width), np.int64)
        values, got = _padded(column[name], width, f"{where}, column {name!r}", ids=name in ID_LISTS)
        if not np.array_equal(got, lengths):
            row = int(np.flatnonzero(got != lengths)[0])
            raise RequestFileError(
                f"{where}: column {name!r} has {got[row]} items in row {row}, expected {lengths[row]}"
            )
        return values

    actions = _action_multi_hot(column["history_actions"], history_len, config, where)
    return DecodedRequests(
        request=RequestBatch(
            user_id=encode_ids(user, f"{where}, column 'user_id'"),
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


def _action_multi_hot(column: pa.Array, history_len: np.ndarray, config: ModelConfig, where: str) -> np.ndarray:
    """list<list<string>> action names -> [N, H, A] int8 multi-hot, most recent H items kept."""
    where = f"{where}, column 'history_actions'"
    if column.null_count:
        raise RequestFileError(f"{where}: null in some row")
    per_item = pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
    if not np.array_equal(per_item, history_len):
        row = int(np.flatnonzero(per_item != history_len)[0])
        raise RequestFileError(f"{where}: {per_item[row]} items in row {row}, expected {history_len[row]}")
    items = column.flatten()  # one list of names per history item
    names = items.flatten()
    index = pc.index_in(names, value_set=pa.array(config.actions)).to_numpy(zero_copy_only=False)
    unknown = np.isnan(index) if index.dtype.kind == "f" else np.zeros(len(names), bool)
    if unknown.any() or names.null_count:
        bad = repr(names[int(np.flatnonzero(unknown)[0])].as_py()) if unknown.any() else "null"
        raise RequestFileError(f"{where}: unknown action {bad} (heads: {', '.join(config.actions)})")
    index = np.nan_to_num(index).astype(np.int64)
    item_of_name = pc.list_parent_indices(items).to_numpy(zero_copy_only=False)  # flat history item
    row_of_item = np.repeat(np.arange(len(history_len)), history_len)
    first_item = np.concatenate([[0], np.cumsum(history_len)[:-1]])
    h_max = config.history_len
    row = row_of_item[item_of_name]  # request of each name
    slot = item_of_name - first_item[row] - np.maximum(history_len - h_max, 0)[row]  # position once cut to h_max
    kept = slot >= 0  # items older than the most recent h_max are cut
    out = np.zeros((len(history_len), h_max, len(config.actions)), np.int8)
    out[row[kept], slot[kept], index[kept]] = 1
    return out

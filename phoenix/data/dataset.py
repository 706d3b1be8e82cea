"""The dataset directory every training, evaluation and serving job reads.

    DIR/dataset.json                   actions, surfaces, split times, counts, where it came from
    DIR/impressions/{split}.parquet    one row per impression: ids, surface, time, 0/1 per action
    DIR/posts.parquet                  post_id, author_id, created_s (the retrieval corpus)
    DIR/follows.parquet                user_id, author_id (optional: the in-network graph)
    DIR/truth/...                      only a synthetic world has it: the ground truth (eval)

`phoenix import` writes it from a user's log and `phoenix world` from the
synthetic world. Ids are int64 (string ids are fingerprinted on import, see
`phoenix.data.ids`); `impression_id` is the impression's position in time
order, so (time, impression id) orders a dataset the same way on every read.
Every file is written to a temporary name and renamed, and `dataset.json` is
written last: a killed job never leaves a directory that looks complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FORMAT_VERSION = 2
METADATA_FILE = "dataset.json"
SPLITS = ("train", "valid", "test")
ID_COLUMNS = ("impression_id", "user_id", "post_id", "author_id", "surface", "time_s")
OPTIONAL_COLUMNS = ("request_id",)


class DatasetError(ValueError):
    """A dataset directory or one of its files is missing or malformed (names the file)."""


def write_table(table: pa.Table, path: Path, row_group_size: int | None = None) -> None:
    """Write Parquet under a temporary name, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, row_group_size=row_group_size)
    os.replace(tmp, path)


def write_metadata(out_dir: Path, meta: dict) -> None:
    """`dataset.json`, last of all files: its presence means the directory is complete."""
    tmp = out_dir / (METADATA_FILE + ".tmp")
    tmp.write_text(json.dumps({"format_version": FORMAT_VERSION, **meta}, indent=2))
    os.replace(tmp, out_dir / METADATA_FILE)


def read_metadata(data_dir: str | Path) -> dict:
    path = Path(data_dir) / METADATA_FILE
    if not path.is_file():
        older = Path(data_dir) / "world.json"
        hint = " (an older world layout: regenerate it with `phoenix world`)" if older.is_file() else (
            " (create one with `phoenix import` or `phoenix world`)")
        raise DatasetError(f"{path}: dataset metadata not found{hint}")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: not valid JSON: {err}") from err
    if meta.get("format_version") != FORMAT_VERSION or not isinstance(meta.get("actions"), list):
        raise DatasetError(f"{path}: unsupported dataset format {meta.get('format_version')!r}")
    return meta


def read_parquet(
    path: Path, columns: list[str], error: type[ValueError] = DatasetError, what: str = "file"
) -> pa.Table:
    """A Parquet file that must exist, parse and hold `columns`; failures raise `error` naming the file."""
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise error(f"{path}: unreadable or corrupt Parquet: {err}") from err
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise error(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def column(table: pa.Table, name: str, path: Path) -> np.ndarray:
    values = table.column(name)
    if values.null_count:
        raise DatasetError(f"{path}: column {name} has {values.null_count} null value(s)")
    return values.to_numpy()


@dataclasses.dataclass
class ImpressionLog:
    """Impressions of all splits as flat arrays, ordered by (time, impression id)."""

    actions: tuple[str, ...]
    impression_id: np.ndarray  # [N]
    user_id: np.ndarray  # [N]
    post_id: np.ndarray  # [N]
    author_id: np.ndarray  # [N]
    surface: np.ndarray  # [N]
    time_s: np.ndarray  # [N]
    labels: np.ndarray  # [N, A] int8
    split: np.ndarray  # [N] index into SPLITS
    request_id: np.ndarray | None = None  # [N] when the log groups impressions into requests


def read_impressions(data_dir: str | Path, user_shard: tuple[int, int] = (0, 1)) -> ImpressionLog:
    """Load the impressions of every split; a missing or bad file names itself.

    `user_shard` (i, n) keeps only the users with user_id % n == i: in a
    multi-host job host i keeps its own users' rows, every impression of a user
    (so histories are whole) and no other host's. Only the id, time and action
    columns are read, a row group at a time.
    """
    shard, count = user_shard
    if not 0 <= shard < count:
        raise ValueError(f"user_shard: index {shard} is not in [0, {count})")
    data_dir = Path(data_dir)
    meta = read_metadata(data_dir)
    actions = tuple(meta["actions"])
    optional = [c for c in OPTIONAL_COLUMNS if c in meta.get("columns", ())]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in (*ID_COLUMNS, *optional, "labels", "split")}
    for index, split in enumerate(SPLITS):
        path = data_dir / "impressions" / f"{split}.parquet"
        table = read_parquet(path, [*ID_COLUMNS, *optional, *actions])
        if count > 1:
            table = table.filter(pa.array(column(table, "user_id", path) % count == shard))
        for name in (*ID_COLUMNS, *optional):
            parts[name].append(column(table, name, path).astype(np.int64))
        labels = np.stack([column(table, a, path) for a in actions], axis=1)
        if not np.isin(labels, (0, 1)).all():
            raise DatasetError(f"{path}: action columns must hold 0/1 labels")
        parts["labels"].append(labels.astype(np.int8))
        parts["split"].append(np.full(table.num_rows, index, np.int8))
    merged = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    order = np.lexsort((merged["impression_id"], merged["time_s"]))
    return ImpressionLog(actions=actions, **{k: v[order] for k, v in merged.items()})


def posts_table(log: ImpressionLog) -> pa.Table:
    """`posts.parquet` of a log without a posts file: every post, its author and its first impression."""
    posts, first = np.unique(log.post_id, return_index=True)  # log rows are in time order
    return pa.table({"post_id": posts, "author_id": log.author_id[first], "created_s": log.time_s[first]})


def impressions_table(log: ImpressionLog, rows: np.ndarray, extra: dict[str, np.ndarray] | None = None) -> pa.Table:
    """The dataset's impression columns of `rows` (one split), ready for `write_table`."""
    columns = {name: getattr(log, name)[rows] for name in ID_COLUMNS}
    if log.request_id is not None:
        columns["request_id"] = log.request_id[rows]
    columns |= extra or {}
    for a, action in enumerate(log.actions):
        columns[action] = log.labels[rows, a]
    return pa.table(columns)

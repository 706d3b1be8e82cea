"""The optional side files of an imported log: who follows whom, and who wrote each post.

    follows: user_id, author_id                 (the in-network graph)
    posts:   post_id, author_id[, created_s]    (authors of posts, and when they were created:
                                                 integer seconds or ISO 8601)

Either may be Parquet, CSV or TSV; ids are encoded as the log's are.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa

from phoenix.data import log_columns
from phoenix.data.log_sources import LogFileError, file_columns, read_batches, resolve_files


def _read(path: str | Path, required: list[str], optional: list[str]) -> dict[str, list]:
    """Columns of a side file, each converted; any malformed row fails naming file and line."""
    ((file, kind),) = resolve_files(path)
    header = file_columns(file, kind)
    missing = [c for c in required if c not in header]
    if missing:
        raise LogFileError(f"{file}: missing column(s) {', '.join(missing)} (columns: {', '.join(header)})")
    wanted = required + [c for c in optional if c in header]
    out: dict[str, list] = {c: [] for c in wanted}
    bad_lines: list = []
    for batch in read_batches(file, kind, wanted, bad_lines):
        for name in wanted:
            array = batch.table.column(name)
            try:
                if name == "created_s":
                    values, in_ms, bad = log_columns.times(array, name, "s")
                    values = np.where(in_ms, values // 1000, values)
                else:
                    values, bad = log_columns.ids(array, name)
            except TypeError as err:
                raise LogFileError(f"{file}: {err}") from err
            if bad.any():
                where = batch.where(int(np.flatnonzero(bad)[0]))
                raise LogFileError(f"{where}: column {name!r} is missing or malformed")
            out[name].append(values)
    if bad_lines:
        raise LogFileError(f"{bad_lines[0][0]}: {bad_lines[0][1]}")
    return {name: np.concatenate(chunks) if chunks else np.zeros(0, np.int64) for name, chunks in out.items()}


def read_follows(path: str | Path) -> pa.Table:
    columns = _read(path, ["user_id", "author_id"], [])
    return pa.table(columns)


@dataclasses.dataclass
class PostsFile:
    post_id: np.ndarray  # [P] sorted
    author_id: np.ndarray  # [P]
    created_s: np.ndarray | None  # [P]
    path: str

    def author_of(self, post_ids: np.ndarray) -> np.ndarray:  # [N] -> [N], 0 where unknown
        pos = np.minimum(np.searchsorted(self.post_id, post_ids), max(self.post_id.size - 1, 0))
        found = self.post_id.size > 0 and self.post_id[pos] == post_ids
        return np.where(found, self.author_id[pos] if self.post_id.size else 0, 0)

    def table(self) -> pa.Table:
        created = self.created_s if self.created_s is not None else np.zeros_like(self.post_id)
        return pa.table({"post_id": self.post_id, "author_id": self.author_id, "created_s": created})


def read_posts(path: str | Path) -> PostsFile:
    columns = _read(path, ["post_id", "author_id"], ["created_s"])
    order = np.argsort(columns["post_id"], kind="stable")
    post_id = columns["post_id"][order]
    if post_id.size > 1 and (post_id[1:] == post_id[:-1]).any():
        raise LogFileError(f"{path}: post_id {int(post_id[1:][post_id[1:] == post_id[:-1]][0])} is listed twice")
    created = columns.get("created_s")
    return PostsFile(post_id, columns["author_id"][order], created[order] if created is not None else None, str(path))

"""Reading a retrieval corpus from Parquet: post_id, author_id and (optional) created_s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from phoenix.data.dataset import read_parquet


class CorpusFileError(ValueError):
    """A corpus file is missing, unreadable or malformed (names the file and column)."""


def read_corpus(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(post_ids, author_ids, created_s or None) of a corpus Parquet file, validated."""
    path = Path(path)
    table = read_parquet(path, ["post_id", "author_id"], CorpusFileError, what="corpus file")
    if table.num_rows == 0:
        raise CorpusFileError(f"{path}: the corpus is empty")
    columns = {}
    for name in ("post_id", "author_id", "created_s"):
        if name not in table.column_names:
            continue
        column = table.column(name)
        if not pa.types.is_integer(column.type):
            raise CorpusFileError(f"{path}: column {name} must hold integers, got {column.type}")
        if column.null_count:
            raise CorpusFileError(f"{path}: column {name} has {column.null_count} null value(s)")
        columns[name] = column.to_numpy().astype(np.int64)
    for name in ("post_id", "author_id"):
        bad = np.flatnonzero(columns[name] <= 0)
        if bad.size:
            raise CorpusFileError(f"{path}: column {name} row {int(bad[0])}: ids must be positive, "
                                  f"got {int(columns[name][bad[0]])}")
    return columns["post_id"], columns["author_id"], columns.get("created_s")

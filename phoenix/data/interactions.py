"""Interaction logs from files: CSV, TSV, Parquet, SASRec's "user item" text, MovieLens 100K.

Every format becomes one `InteractionLog`: dense user and item indices
(1-based; 0 stays padding for the models), an optional dense author index,
and a multi-hot of actions per row, in time order. Raw ids may be any strings
or integers; `user_ids[k - 1]` is the raw id of user index k.

Rows that cannot be read (wrong field count, empty id, a timestamp, rating or
action value that is not a number) are never dropped silently: they are
counted in `malformed` with the line numbers and reasons of the first few.
A missing, empty or unreadable file fails with its name.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from phoenix.config import LogsConfig

FORMATS = ("auto", "csv", "tsv", "parquet", "sasrec", "ml-100k")
COLUMN_ALIASES = {
    "user": ("user_id", "user", "userid"),
    "item": ("item_id", "item", "itemid", "post_id", "movie_id"),
    "author": ("author_id", "author"),
    "time": ("timestamp", "time", "time_s", "ts"),
    "rating": ("rating",),
}
ID_NAMES = frozenset(COLUMN_ALIASES["user"] + COLUMN_ALIASES["item"] + COLUMN_ALIASES["author"])
MAX_REPORTED = 5


class LogDataError(ValueError):
    """An interaction file is missing, empty, unreadable or has no usable rows (names the file)."""


@dataclasses.dataclass
class MalformedRows:
    """Rows that could not be read: how many, and (line, reason) of the first few."""

    count: int = 0
    examples: list[tuple[int, str]] = dataclasses.field(default_factory=list)

    def add(self, line: int, reason: str) -> None:
        self.count += 1
        if len(self.examples) < MAX_REPORTED:
            self.examples.append((line, reason))

    def summary(self) -> str:
        shown = "; ".join(f"line {line}: {reason}" for line, reason in self.examples)
        return f"{self.count} malformed rows" + (f" (first: {shown})" if shown else "")


@dataclasses.dataclass
class InteractionLog:
    """N interactions in time order (ties keep file order)."""

    user: np.ndarray  # [N] int64, 1..U
    item: np.ndarray  # [N] int64, 1..I
    author: np.ndarray  # [N] int64, 0 (no author column) or 1..W
    actions: np.ndarray  # [N, A] int8 multi-hot over `action_names`
    action_names: tuple[str, ...]
    user_ids: np.ndarray  # [U] raw user ids
    item_ids: np.ndarray  # [I] raw item ids
    malformed: MalformedRows
    source: str
    author_ids: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, object))  # [W] raw author ids

    @property
    def num_users(self) -> int:
        return int(self.user_ids.size)

    @property
    def num_items(self) -> int:
        return int(self.item_ids.size)

    def __len__(self) -> int:
        return int(self.user.size)


def detect_format(path: Path) -> str:
    if path.is_dir():
        if (path / "u.data").is_file():
            return "ml-100k"
        raise LogDataError(f"{path}: a folder is read only as MovieLens 100K, and it has no u.data")
    suffixes = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".txt": "sasrec"}
    if path.suffix.lower() in suffixes:
        return suffixes[path.suffix.lower()]
    raise LogDataError(f"{path}: cannot tell the format from the name; pass --format (one of {FORMATS[1:]})")


def _read_text_rows(path: Path, delimiter: str | None, header: bool) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header names and (line number, fields) of every non-empty line of a text log."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # a byte-order mark is not part of a name
            if delimiter is None:  # whitespace-separated ("user item" text)
                rows = [(n, line.split()) for n, line in enumerate(f, 1)]
            else:
                reader = csv.reader(f, delimiter=delimiter)
                rows = []
                for fields in reader:
                    rows.append((reader.line_num, fields))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise LogDataError(f"{path}: cannot read: {err}") from err
    rows = [(n, fields) for n, fields in rows if any(x.strip() for x in fields)]
    if not rows or (header and len(rows) == 1):
        raise LogDataError(f"{path}: the file has no interaction rows")
    if header:
        return [name.strip().lower() for name in rows[0][1]], rows[1:]
    return [], rows


def _pick(names: list[str], role: str) -> str | None:
    for alias in COLUMN_ALIASES[role]:
        if alias in names:
            return alias
    return None


def _numbers(values: list[str], lines: np.ndarray, column: str, ok: np.ndarray, malformed: MalformedRows) -> np.ndarray:
    """Parse a column of strings as float64; unparsable rows are marked malformed (ok=False)."""
    out = np.zeros(len(values))
    for i, text in enumerate(values):
        if not ok[i]:
            continue
        try:
            out[i] = float(text)
            if not np.isfinite(out[i]):
                raise ValueError
        except ValueError:
            ok[i] = False
            malformed.add(int(lines[i]), f"{column} {text!r} is not a finite number")
    return out


def _columns_from_text(path: Path, fmt: str) -> tuple[dict, np.ndarray, MalformedRows]:
    """Named columns (strings) of a text log, the line number of each row, and its malformed rows."""
    if fmt == "ml-100k":
        names, rows = ["user_id", "item_id", "rating", "timestamp"], _read_text_rows(path / "u.data", "\t", False)[1]
    elif fmt == "sasrec":
        names, rows = ["user_id", "item_id"], _read_text_rows(path, None, False)[1]
    else:
        names, rows = _read_text_rows(path, "," if fmt == "csv" else "\t", True)
    malformed = MalformedRows()
    good = []
    for line, fields in rows:
        if len(fields) != len(names):
            malformed.add(line, f"expected {len(names)} fields, got {len(fields)}")
        else:
            good.append((line, fields))
    lines = np.array([line for line, _ in good], np.int64)
    columns = {name: [fields[j].strip() for _, fields in good] for j, name in enumerate(names)}
    return columns, lines, malformed


def _columns_from_parquet(path: Path) -> tuple[dict, np.ndarray, MalformedRows]:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise LogDataError(f"{path}: cannot read as Parquet: {err}") from err
    if table.num_rows == 0:
        raise LogDataError(f"{path}: the file has no interaction rows")
    columns = {}
    for name in table.column_names:
        kind = table.column(name).type
        if name.strip().lower() in ID_NAMES and not (pa.types.is_integer(kind) or pa.types.is_string(kind)
                                                     or pa.types.is_large_string(kind)):
            raise LogDataError(f"{path}: column {name!r} holds ids, which must be integers or strings, not {kind}")
        values = table.column(name).to_pylist()
        columns[name.strip().lower()] = ["" if v is None else str(v) for v in values]
    return columns, np.arange(1, table.num_rows + 1, dtype=np.int64), MalformedRows()


def _dense(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based dense indices of raw ids (sorted, so the same ids always map the same way) and the raw ids."""
    try:
        numeric = raw.astype(np.int64)
        if np.array_equal(numeric.astype(str), raw):  # plain integers: sort numerically
            raw = numeric
    except (ValueError, OverflowError):  # text, or integers beyond int64: sorted as text
        pass
    ids, index = np.unique(raw, return_inverse=True)
    return index.astype(np.int64) + 1, ids


def load_interactions(
    path: str | Path, config: LogsConfig, action_names: tuple[str, ...], fmt: str = "auto"
) -> InteractionLog:
    """Read an interaction log; actions follow `config` (see the module docstring)."""
    path = Path(path)
    if fmt not in FORMATS:
        raise LogDataError(f"--format: expected one of {FORMATS}, got {fmt!r}")
    if not path.exists():
        raise LogDataError(f"{path}: no such file or folder")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "parquet":
        columns, lines, malformed = _columns_from_parquet(path)
    else:
        columns, lines, malformed = _columns_from_text(path, fmt)
    names = list(columns)
    role = {r: _pick(names, r) for r in COLUMN_ALIASES}
    for needed in ("user", "item"):
        if role[needed] is None:
            looked = ", ".join(COLUMN_ALIASES[needed])
            raise LogDataError(f"{path}: no {needed} column (looked for {looked}; got {names})")
    action_columns = [a for a in action_names if a in names]
    ok = np.ones(lines.size, bool)
    for r in ("user", "item"):
        for i, value in enumerate(columns[role[r]]):
            if ok[i] and not value:
                ok[i] = False
                malformed.add(int(lines[i]), f"empty {role[r]}")
    time = _numbers(columns[role["time"]], lines, role["time"], ok, malformed) if role["time"] else None
    rating = _numbers(columns[role["rating"]], lines, role["rating"], ok, malformed) if role["rating"] else None
    flags = {}
    for a in action_columns:
        flags[a] = _numbers(columns[a], lines, a, ok, malformed)
        for i in np.flatnonzero(ok & (flags[a] != 0) & (flags[a] != 1)):
            ok[i] = False
            malformed.add(int(lines[i]), f"action {a} must be 0 or 1, got {columns[a][i]!r}")
    keep = np.flatnonzero(ok)
    if keep.size == 0:
        raise LogDataError(f"{path}: no readable interaction rows ({malformed.summary()})")
    if time is not None:
        keep = keep[np.argsort(time[keep], kind="stable")]  # time order; ties keep file order
    actions = np.zeros((keep.size, len(action_names)), np.int8)
    actions[:, action_names.index(config.interaction_action)] = 1
    if rating is not None:
        for action, (low, high) in config.rating_actions.items():
            actions[:, action_names.index(action)] |= ((rating[keep] >= low) & (rating[keep] <= high)).astype(np.int8)
    for a in action_columns:
        actions[:, action_names.index(a)] |= flags[a][keep].astype(np.int8)
    user, user_ids = _dense(np.asarray(columns[role["user"]], dtype=str)[keep])
    item, item_ids = _dense(np.asarray(columns[role["item"]], dtype=str)[keep])
    author = np.zeros(keep.size, np.int64)  # 0: no author (the models' padding embedding)
    author_ids = np.zeros(0, object)
    if role["author"]:
        raw = np.asarray(columns[role["author"]], dtype=str)[keep]
        has_author = raw != ""
        if has_author.any():
            author[has_author], author_ids = _dense(raw[has_author])
    return InteractionLog(user, item, author, actions, action_names, user_ids, item_ids, malformed, str(path),
                          author_ids)

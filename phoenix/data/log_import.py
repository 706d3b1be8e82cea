"""`phoenix import`: a user's impression log -> the dataset directory training reads.

One row per impression: a user id, a post id, a time (or file order) and a 0/1
column per action, plus optional author, surface, impression and request ids.
A log without authors (and no posts file naming them) makes each post its own
author, so every id the model and serving see is a real, positive id.
The log is read a batch at a time (`log_sources`), each column converted and
checked as a whole array (`log_columns`); malformed rows are counted per
column and reason with the file and line of the first few, and the import
fails unless `skip_malformed` drops them (still reported). Then it orders the
impressions by time, splits them by time into train / valid / test, and
writes `phoenix.data.dataset`'s layout. The output is a fixed function of the
input files and the mapping: rerunning an interrupted import writes the same
directory.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa

from phoenix.config import ImportConfig
from phoenix.data import log_columns
from phoenix.data.dataset import (
    SPLITS,
    ImpressionLog,
    impressions_table,
    posts_table,
    write_metadata,
    write_table,
)
from phoenix.data.log_side_files import read_follows, read_posts
from phoenix.data.log_sources import LogFileError, file_columns, read_batches, resolve_files

OPTIONAL_ROLES = ("author_id", "surface", "impression_id", "request_id", "time")
EXAMPLES_KEPT = 5
ROW_GROUP = 1 << 20


@dataclasses.dataclass
class Problems:
    """Malformed rows: how many per (column, reason), and where the first few are."""

    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    examples: list[str] = dataclasses.field(default_factory=list)

    def add(self, reason: str, wheres: list[str], count: int) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + count
        self.examples.extend(f"{w}: {reason}" for w in wheres[: max(0, EXAMPLES_KEPT - len(self.examples))])

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        counts = "; ".join(f"{n} row(s) with {reason}" for reason, n in self.counts.items())
        return f"{counts} (first: {' | '.join(self.examples)})"


def column_roles(config: ImportConfig, header: list[str], path: Path) -> tuple[dict[str, str], list[str]]:
    """(role -> column, action columns) of a log file; a named column that is missing fails naming it."""
    roles = {}
    for role, name in config.column_names().items():
        if name:
            if name not in header:
                raise LogFileError(f"{path}: column {name!r} (import.{role}) not found; columns: {', '.join(header)}")
            roles[role] = name
        elif role in OPTIONAL_ROLES and role in header:  # the conventional name, when the log has it
            roles[role] = role
    used = set(roles.values())
    actions = list(config.actions) or [c for c in header if c not in used]
    missing = [a for a in actions if a not in header]
    if missing:
        raise LogFileError(f"{path}: action column(s) {', '.join(missing)} (import.actions) not found")
    if not actions:
        raise LogFileError(f"{path}: no action columns (every column is an id or a time); name them in import.actions")
    overlap = [a for a in actions if a in used]
    if overlap:
        raise LogFileError(f"{path}: column(s) {', '.join(overlap)} cannot be both an action and an id or time")
    return roles, actions


class _Collector:
    """The converted columns of every good row so far, as lists of numpy chunks."""

    def __init__(self, roles: dict[str, str], actions: list[str], time_unit: str):
        self.roles, self.actions, self.time_unit = roles, actions, time_unit
        self.chunks: dict[str, list[np.ndarray]] = {}
        self.surface_codes: dict[str, int] = {}  # surface text -> code, first seen first
        self.rows = 0
        self.batches: list = []  # (first input row, batch): to say where an input row is

    def where(self, row: int) -> str:
        starts = [first for first, _ in self.batches]
        first, batch = self.batches[int(np.searchsorted(starts, row, side="right")) - 1]
        return batch.where(row - first)

    def add(self, batch, problems: Problems, skip_malformed: bool) -> None:
        table, roles, n = batch.table, self.roles, batch.table.num_rows
        out, bad = {}, np.zeros(n, bool)

        def check(name: str, values_bad: tuple, reason: str):
            *values, mask = values_bad
            if mask.any():
                rows = np.flatnonzero(mask)
                problems.add(f"{name}: {reason}", [batch.where(int(r)) for r in rows[:EXAMPLES_KEPT]], rows.size)
                bad[:] |= mask
            return values[0] if len(values) == 1 else values

        try:
            for role in ("user_id", "post_id", "author_id", "impression_id", "request_id"):
                if role in roles:
                    name = roles[role]
                    out[role] = check(name, log_columns.ids(table.column(name), name), "missing id")
            if "time" in roles:
                column = roles["time"]
                out["time"], out["time_ms"] = check(
                    column, log_columns.times(table.column(column), column, self.time_unit), "not a time")
            if "surface" in roles:
                names = check(roles["surface"], log_columns.surface_names(table.column(roles["surface"])), "missing")
                out["surface"] = self._surface_codes(names)
            out["labels"] = np.stack(
                [check(a, log_columns.labels(table.column(a), a), "a label that is not 0/1") for a in self.actions],
                axis=1)
        except TypeError as err:
            raise LogFileError(f"{batch.path}: {err}") from err
        out["row"] = np.arange(self.rows, self.rows + n, dtype=np.int64)
        self.batches.append((self.rows, dataclasses.replace(batch, table=None)))
        self.rows += n
        if problems.rows and not skip_malformed:
            return  # the import will fail with the report: no need to keep rows
        for name, values in out.items():
            self.chunks.setdefault(name, []).append(values[~bad])

    def _surface_codes(self, names: pa.Array) -> np.ndarray:
        encoded = names.dictionary_encode()
        codes = np.array([self.surface_codes.setdefault(s, len(self.surface_codes))
                          for s in encoded.dictionary.to_pylist()], np.int64)  # per distinct surface, not per row
        return codes[encoded.indices.to_numpy(zero_copy_only=False)]

    def column(self, name: str) -> np.ndarray | None:
        return np.concatenate(self.chunks[name]) if name in self.chunks else None


def _surface_table(codes: dict[str, int]) -> tuple[np.ndarray, list[str]]:
    """code -> surface index, and the surface names by index: integer surfaces are their own
    index; names are numbered in sorted order (so every import of a log agrees)."""
    names = list(codes)
    if all(n.isdigit() for n in names):
        index = np.array([int(n) for n in names], np.int64)
        top = int(index.max(initial=0))
        return index, [str(i) for i in range(top + 1)]
    ordered = sorted(names)
    return np.array([ordered.index(n) for n in names], np.int64), ordered


def _times_ms(col: _Collector, unit: str) -> np.ndarray:
    raw, in_ms = col.column("time"), col.column("time_ms")
    if raw is None:  # no time column: file order, one millisecond apart
        return col.column("row")
    ints = ~in_ms
    if unit == "auto":
        unit = "ms" if ints.any() and np.abs(raw[ints]).max() > 1e11 else "s"
    return np.where(ints, raw * (1000 if unit == "s" else 1), raw)


def _cut_ms(value: str, field: str) -> int:
    values, in_ms, bad = log_columns.times(pa.array([value]), field, "auto")
    if bad[0]:
        raise LogFileError(f"import.{field}: {value!r} is not integer seconds or ISO 8601")
    return int(values[0] if in_ms[0] else values[0] * 1000)


def _split_cuts(time_ms: np.ndarray, config: ImportConfig) -> tuple[int, int]:
    if config.valid_start:
        return _cut_ms(config.valid_start, "valid_start"), _cut_ms(config.test_start, "test_start")
    ordered = np.sort(time_ms)
    n = ordered.size
    return (int(ordered[int(n * (1 - config.valid_fraction - config.test_fraction))]),
            int(ordered[int(n * (1 - config.test_fraction))]))


def _duplicates(col: _Collector, problems: Problems) -> np.ndarray:
    """Rows to keep: the first row of each impression id. Without an impression_id column every row
    is its own impression (a log with one-second times can show a post twice in a second)."""
    key, row = col.column("impression_id"), col.column("row")
    if key is None:
        return np.ones(row.size, bool)
    order = np.lexsort((row, key))
    repeat = np.r_[False, key[order][1:] == key[order][:-1]]  # [N] in key order: same id as the row before
    if repeat.any():
        problems.add("a duplicate impression_id (an earlier row has it)",
                     [col.where(int(r)) for r in row[order[repeat]][:EXAMPLES_KEPT]], int(repeat.sum()))
    keep = np.ones(row.size, bool)
    keep[order[repeat]] = False
    return keep


def import_log(source, out_dir: str | Path, config: ImportConfig) -> dict:
    """Validate, order and split a log into `out_dir`; returns the dataset's metadata."""
    files = resolve_files(source, config.format)
    header = file_columns(*files[0])
    roles, actions = column_roles(config, header, files[0][0])
    col, problems, bad_lines = _Collector(roles, actions, config.time_unit), Problems(), []
    wanted = list(dict.fromkeys([*roles.values(), *actions]))
    for path, kind in files:
        other = file_columns(path, kind)
        if other != header and set(wanted) - set(other):
            raise LogFileError(f"{path}: missing column(s) {', '.join(sorted(set(wanted) - set(other)))} "
                               f"that {files[0][0]} has")
        for batch in read_batches(path, kind, wanted, bad_lines):
            col.add(batch, problems, config.skip_malformed)
    if bad_lines:
        problems.add(bad_lines[0][1], [w for w, _ in bad_lines], len(bad_lines))
    if col.rows == 0:
        malformed = f" that can be read ({problems.summary()})" if bad_lines else ""
        raise LogFileError(f"{files[0][0]}: the log has no rows{malformed}")
    if problems.rows and not config.skip_malformed:
        raise LogFileError(f"malformed rows: {problems.summary()}; fix them, or pass --skip-malformed to drop "
                           "them (they stay counted in dataset.json)")
    time_ms = _times_ms(col, config.time_unit)
    keep = _duplicates(col, problems)
    if not keep.all() and not config.skip_malformed:
        raise LogFileError(f"{problems.summary()}; pass --skip-malformed to keep only the first of each")
    try:
        log, split_ms, surfaces = _ordered_log(col, time_ms, keep, actions, config)
    except LogFileError as err:
        raise LogFileError(f"{files[0][0] if len(files) == 1 else source}: {err}") from err
    return _write(log, out_dir, files, roles, surfaces, split_ms, problems, config)


def _ordered_log(col: _Collector, time_ms: np.ndarray, keep: np.ndarray, actions: list[str], config: ImportConfig):
    rows = np.flatnonzero(keep)
    by_time = np.lexsort((col.column("row")[rows], time_ms[rows]))  # ties keep file order
    order, time_ms = rows[by_time], time_ms[rows][by_time]
    n = order.size
    if n == 0:
        raise LogFileError("no rows left to import")
    cuts = _split_cuts(time_ms, config)
    split = np.searchsorted(np.array(cuts), time_ms, side="right").astype(np.int8)
    for index, name in enumerate(SPLITS):
        if not (split == index).any():
            raise LogFileError(f"the {name} split is empty (cut times {cuts[0]} and {cuts[1]} ms; the log spans "
                               f"{int(time_ms[0])}..{int(time_ms[-1])} ms): choose other fractions or cut times")
    if "surface" in col.chunks:
        index, surfaces = _surface_table(col.surface_codes)
        surface = index[col.column("surface")[order]]
    else:
        surface, surfaces = np.zeros(n, np.int64), ["unknown"]
    author = col.column("author_id")
    request = col.column("request_id")
    log = ImpressionLog(
        actions=tuple(actions),
        impression_id=np.arange(1, n + 1, dtype=np.int64),
        user_id=col.column("user_id")[order],
        post_id=col.column("post_id")[order],
        # No author column: each post is its own author until a posts file says otherwise.
        author_id=author[order] if author is not None else col.column("post_id")[order].copy(),
        surface=surface,
        time_s=np.floor_divide(time_ms, 1000),
        labels=col.column("labels")[order],
        split=split,
        request_id=request[order] if request is not None else None,
    )
    return log, cuts, surfaces


def _write(log: ImpressionLog, out_dir, files, roles, surfaces, split_ms, problems, config) -> dict:
    out = Path(out_dir)
    posts, authorless = None, 0
    if config.posts_file:
        posts = read_posts(config.posts_file)
        if "author_id" not in roles:
            known = posts.author_of(log.post_id)
            authorless = int(np.unique(log.post_id[known == 0]).size)  # not in the posts file: their own author
            log.author_id = np.where(known > 0, known, log.post_id)
    for index, split in enumerate(SPLITS):
        rows = np.flatnonzero(log.split == index)
        write_table(impressions_table(log, rows), out / "impressions" / f"{split}.parquet", ROW_GROUP)
    write_table(posts.table() if posts is not None else posts_table(log), out / "posts.parquet")
    if config.follows_file:
        write_table(read_follows(config.follows_file), out / "follows.parquet")
    positives = {s: {a: int(log.labels[log.split == i, k].sum()) for k, a in enumerate(log.actions)}
                 for i, s in enumerate(SPLITS)}
    meta = {
        "source": "import",
        "files": [str(p.absolute()) for p, _ in files],
        "columns": ["request_id"] if log.request_id is not None else [],
        "roles": roles,
        "actions": list(log.actions),
        "surfaces": surfaces,
        "split_times_s": [int(split_ms[0] // 1000), int(split_ms[1] // 1000)],
        "end_time_s": int(log.time_s.max()) + 1,
        "counts": {s: int((log.split == i).sum()) for i, s in enumerate(SPLITS)},
        "positives": positives,
        "users": int(np.unique(log.user_id).size),
        "authors": "column" if "author_id" in roles else "posts file" if posts is not None else "each post its own",
        "posts_missing_from_posts_file": authorless,
        "posts": int(np.unique(log.post_id).size),
        "malformed": {"rows": problems.rows, "dropped": problems.rows if config.skip_malformed else 0,
                      "counts": problems.counts, "first": problems.examples},
        "import_config": dataclasses.asdict(config),
    }
    write_metadata(out, meta)
    return meta


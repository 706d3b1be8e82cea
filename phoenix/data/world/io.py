"""Parquet layout of a world on disk, and loading it back with clear errors.

    DIR/world.json                     actions, surfaces, split times, counts
    DIR/follows.parquet                the follow graph (user_id, author_id)
    DIR/posts.parquet                  post_id, author_id, created_s
    DIR/impressions/{split}.parquet    what a model may see: ids, surface, time, labels
    DIR/truth/{split}.parquet          ground-truth P(action) per impression (eval only)
    DIR/truth/{users,authors,posts}.parquet   hidden attributes, for analysis

Files are written to a temporary name and renamed, so a killed `phoenix world`
never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from phoenix.data.world.generator import SPLITS, World
from phoenix.data.world.truth import SURFACES

FORMAT_VERSION = 1
ID_COLUMNS = ("impression_id", "user_id", "post_id", "author_id", "surface", "time_s")


class WorldDataError(ValueError):
    """A world directory or one of its files is missing or malformed (names the file)."""


def _write_table(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def write_world(world: World, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    imp = world.impressions
    for index, split in enumerate(SPLITS):
        rows = imp.split == index
        columns = {name: getattr(imp, name)[rows] for name in ID_COLUMNS}
        columns["in_network"] = imp.in_network[rows]
        for a, action in enumerate(world.actions):
            columns[action] = imp.labels[rows, a]
        _write_table(pa.table(columns), out / "impressions" / f"{split}.parquet")
        truth = {"impression_id": imp.impression_id[rows]}
        for a, action in enumerate(world.actions):
            truth[f"p_{action}"] = imp.truth[rows, a]
        _write_table(pa.table(truth), out / "truth" / f"{split}.parquet")
    _write_table(
        pa.table({"user_id": world.follows[:, 0] + 1, "author_id": world.follows[:, 1] + 1}),
        out / "follows.parquet",
    )
    posts = world.posts
    post_ids = np.arange(1, posts.author.size + 1)
    _write_table(
        pa.table({"post_id": post_ids, "author_id": posts.author + 1, "created_s": posts.created_s}),
        out / "posts.parquet",
    )
    for name, entity in (("users", world.users), ("authors", world.authors), ("posts", world.posts)):
        columns = {}
        for field in dataclasses.fields(entity):
            value = getattr(entity, field.name)
            columns[field.name] = list(value) if value.ndim > 1 else value
        _write_table(pa.table(columns), out / "truth" / f"{name}.parquet")
    meta = {
        "format_version": FORMAT_VERSION,
        "actions": list(world.actions),
        "surfaces": list(SURFACES),
        "split_times_s": list(world.split_times_s),
        "counts": {s: int((imp.split == i).sum()) for i, s in enumerate(SPLITS)},
        "config": dataclasses.asdict(world.config),
    }
    tmp = out / "world.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, out / "world.json")
    return out


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


def impression_log(world: World) -> ImpressionLog:
    """The in-memory world's impressions in the same form `read_impressions` returns."""
    imp = world.impressions
    return ImpressionLog(
        world.actions, imp.impression_id, imp.user_id, imp.post_id, imp.author_id,
        imp.surface.astype(np.int64), imp.time_s, imp.labels, imp.split,
    )


def read_metadata(world_dir: str | Path) -> dict:
    path = Path(world_dir) / "world.json"
    if not path.is_file():
        raise WorldDataError(f"{path}: world metadata not found (run `phoenix world` first)")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise WorldDataError(f"{path}: not valid JSON: {err}") from err
    if meta.get("format_version") != FORMAT_VERSION or not isinstance(meta.get("actions"), list):
        raise WorldDataError(f"{path}: unsupported world format {meta.get('format_version')!r}")
    return meta


def read_parquet(
    path: Path, columns: list[str], error: type[ValueError] = WorldDataError, what: str = "file"
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


def _column(table: pa.Table, name: str, path: Path) -> np.ndarray:
    values = table.column(name)
    if values.null_count:
        raise WorldDataError(f"{path}: column {name} has {values.null_count} null value(s)")
    return values.to_numpy()


def read_impressions(world_dir: str | Path, user_shard: tuple[int, int] = (0, 1)) -> ImpressionLog:
    """Load the impressions of every split; a missing or bad file names itself.

    `user_shard` (i, n) keeps only the users with user_id % n == i: in a
    multi-host job host i keeps its own users' rows, every impression of a user
    (so histories are whole) and no other host's.
    """
    shard, count = user_shard
    if not 0 <= shard < count:
        raise ValueError(f"user_shard: index {shard} is not in [0, {count})")
    world_dir = Path(world_dir)
    actions = tuple(read_metadata(world_dir)["actions"])
    parts: dict[str, list[np.ndarray]] = {name: [] for name in (*ID_COLUMNS, "labels", "split")}
    for index, split in enumerate(SPLITS):
        path = world_dir / "impressions" / f"{split}.parquet"
        table = read_parquet(path, [*ID_COLUMNS, *actions])
        if count > 1:
            table = table.filter(pa.array(_column(table, "user_id", path) % count == shard))
        for name in ID_COLUMNS:
            parts[name].append(_column(table, name, path).astype(np.int64))
        labels = np.stack([_column(table, a, path) for a in actions], axis=1)
        if not np.isin(labels, (0, 1)).all():
            raise WorldDataError(f"{path}: action columns must hold 0/1 labels")
        parts["labels"].append(labels.astype(np.int8))
        parts["split"].append(np.full(table.num_rows, index, np.int8))
    merged = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    order = np.lexsort((merged["impression_id"], merged["time_s"]))
    return ImpressionLog(actions=actions, **{k: v[order] for k, v in merged.items()})


def read_truth(world_dir: str | Path, split: str, actions: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth (impression ids [N], probabilities [N, A]) of one split."""
    path = Path(world_dir) / "truth" / f"{split}.parquet"
    columns = [f"p_{a}" for a in actions]
    table = read_parquet(path, ["impression_id", *columns])
    probs = np.stack([_column(table, c, path) for c in columns], axis=1).astype(np.float32)
    return _column(table, "impression_id", path).astype(np.int64), probs

"""The synthetic world on disk: the dataset layout (`phoenix.data.dataset`) plus its truth.

    DIR/truth/{split}.parquet                 ground-truth P(action) per impression (eval only)
    DIR/truth/{users,authors,posts}.parquet   hidden attributes, for analysis

A model sees exactly what it would see in an imported log; only evaluation
reads the truth, to put the oracle beside the model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa

from phoenix.data.dataset import (
    SPLITS,
    column,
    impressions_table,
    read_parquet,
    write_metadata,
    write_table,
)
from phoenix.data.world.generator import World
from phoenix.data.world.truth import SURFACES


def write_world(world: World, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    imp, log = world.impressions, world.impressions.log
    for index, split in enumerate(SPLITS):
        rows = np.flatnonzero(log.split == index)
        table = impressions_table(log, rows, extra={"in_network": imp.in_network[rows]})
        write_table(table, out / "impressions" / f"{split}.parquet")
        truth = {"impression_id": log.impression_id[rows]}
        for a, action in enumerate(world.actions):
            truth[f"p_{action}"] = imp.truth[rows, a]
        write_table(pa.table(truth), out / "truth" / f"{split}.parquet")
    write_table(
        pa.table({"user_id": world.follows[:, 0] + 1, "author_id": world.follows[:, 1] + 1}),
        out / "follows.parquet",
    )
    posts = world.posts
    post_ids = np.arange(1, posts.author.size + 1)
    write_table(
        pa.table({"post_id": post_ids, "author_id": posts.author + 1, "created_s": posts.created_s}),
        out / "posts.parquet",
    )
    for name, entity in (("users", world.users), ("authors", world.authors), ("posts", world.posts)):
        columns = {}
        for field in dataclasses.fields(entity):
            value = getattr(entity, field.name)
            columns[field.name] = list(value) if value.ndim > 1 else value
        write_table(pa.table(columns), out / "truth" / f"{name}.parquet")
    write_metadata(out, {
        "source": "world",
        "actions": list(world.actions),
        "surfaces": list(SURFACES),
        "split_times_s": list(world.split_times_s),
        "end_time_s": int(world.config.days * 86400),
        "counts": {s: int((log.split == i).sum()) for i, s in enumerate(SPLITS)},
        "config": dataclasses.asdict(world.config),
    })
    return out


def has_truth(data_dir: str | Path) -> bool:
    """Whether a dataset carries ground truth (a synthetic world) or not (an imported log)."""
    return (Path(data_dir) / "truth" / "test.parquet").is_file()


def read_truth(world_dir: str | Path, split: str, actions: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth (impression ids [N], probabilities [N, A]) of one split."""
    path = Path(world_dir) / "truth" / f"{split}.parquet"
    columns = [f"p_{a}" for a in actions]
    table = read_parquet(path, ["impression_id", *columns])
    probs = np.stack([column(table, c, path) for c in columns], axis=1).astype(np.float32)
    return column(table, "impression_id", path).astype(np.int64), probs

"""The benchmark's trained Phoenix as a workdir that `Ranker.load` and `phoenix score` serve.

    OUT/phoenix_workdir/config.toml    the benchmark's config (heads, shapes, user_ids, author_ids)
    OUT/phoenix_workdir/best/<step>/   the parameters the benchmark scored the test split with
    OUT/phoenix_workdir/dataset/       the log in the dataset layout, so `Ranker.user()` and
                                       `phoenix history` find each user's history

The model hashed the log's own ids encoded as serving encodes them
(`NextItemSplit.model_ids`), so a request in those ids scores as the benchmark
did. The dataset's split is the protocol's: each evaluated user's last
interaction is test, the one before it valid; its times are the log's order.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from phoenix.config import PhoenixConfig, save_config
from phoenix.data.dataset import SPLITS, ImpressionLog, impressions_table, posts_table, write_metadata, write_table
from phoenix.data.interactions import InteractionLog
from phoenix.data.protocol import NextItemSplit
from phoenix.model.ranker import PhoenixRanker
from phoenix.workdir import best_manager, save_checkpoint, write_run_data_dir


def protocol_log(log: InteractionLog, split: NextItemSplit) -> ImpressionLog:
    """The log as impressions in model ids, each row in its protocol split (rows stay in time order)."""
    ids = split.model_ids
    n = len(log)
    order = np.argsort(log.user, kind="stable")  # rows of each user, in time order
    position = np.empty(n, np.int64)
    starts = np.concatenate([[0], np.cumsum(np.bincount(log.user, minlength=log.num_users + 1)[1:])])
    position[order] = np.arange(n) - np.repeat(starts[:-1], np.diff(starts))
    length = np.diff(starts)[log.user - 1]
    evaluated = np.isin(log.user, split.eval_users)
    which = np.where(evaluated & (position == length - 1), 2, np.where(evaluated & (position == length - 2), 1, 0))
    post = ids["item"][log.item]
    author = np.where(log.author > 0, ids["author"][np.minimum(log.author, ids["author"].size - 1)], post)
    return ImpressionLog(
        actions=log.action_names, impression_id=np.arange(1, n + 1), user_id=ids["user"][log.user], post_id=post,
        author_id=author, surface=np.zeros(n, np.int64), time_s=np.arange(n, dtype=np.int64),
        labels=log.actions, split=which.astype(np.int8),
    )


def write_servable_workdir(
    workdir: str | Path, model: PhoenixRanker, config: PhoenixConfig, log: InteractionLog, split: NextItemSplit,
    step: int,
) -> Path:
    workdir = Path(workdir).absolute()
    impressions = protocol_log(log, split)
    dataset = workdir / "dataset"
    for index, name in enumerate(SPLITS):
        rows = np.flatnonzero(impressions.split == index)
        write_table(impressions_table(impressions, rows), dataset / "impressions" / f"{name}.parquet")
    write_table(posts_table(impressions), dataset / "posts.parquet")
    n = len(log)
    write_metadata(dataset, {
        "source": "benchmark-logs", "files": [log.source], "actions": list(log.action_names),
        "surfaces": ["unknown"], "split_times_s": [n, n], "end_time_s": n,
        "counts": {s: int((impressions.split == i).sum()) for i, s in enumerate(SPLITS)},
        "split": "leave-last-out per user (time_s is the log's order)",
    })
    save_config(config, workdir / "config.toml")  # this run's, replacing an earlier run's
    if (workdir / "best").is_dir():
        shutil.rmtree(workdir / "best")  # an earlier run's parameters (this job wrote them)
    manager = best_manager(workdir)
    save_checkpoint(manager, step, model, None, {"step": step, "source": "benchmark-logs"})
    manager.wait_until_finished()
    manager.close()
    write_run_data_dir(workdir, dataset)
    return workdir

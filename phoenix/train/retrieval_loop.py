"""`train_retrieval(config, workdir)`: the two-tower model's training job.

It lives beside the ranker in the same workdir (`WORKDIR/retrieval/`: orbax
checkpoints, metrics.jsonl, training.png) and trains on the same world. Like
the ranker's job it resumes from the latest checkpoint with the same batch
order (every step's rows are a function of seed and step), and at the end it
embeds the world's posts into `WORKDIR/retrieval/index.npz`.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from phoenix.config import PhoenixConfig
from phoenix.eval.retrieval import evaluate_retrieval
from phoenix.model.batch import featurize
from phoenix.model.two_tower import TwoTowerModel, build_two_tower
from phoenix.serving.corpus_file import read_corpus
from phoenix.serving.corpus_index import CorpusIndex
from phoenix.serving.retriever import Retriever, default_index_path
from phoenix.train.checkpoint import (
    checkpoint_manager,
    restore_training_state,
    save_checkpoint,
)
from phoenix.train.loader import BatchLoader
from phoenix.train.loop import prepare_run
from phoenix.train.metrics_log import MetricsLog
from phoenix.train.plots import plot_retrieval_training
from phoenix.train.retrieval_examples import pack_retrieval_examples
from phoenix.train.retrieval_step import retrieval_train_step
from phoenix.train.step import make_optimizer
from phoenix.world.io import ImpressionLog


def retrieval_dir(workdir: str | Path) -> Path:
    return Path(workdir) / "retrieval"


def build_world_index(retriever: Retriever, data_dir: Path, step: int) -> CorpusIndex:
    post_ids, author_ids, created_s = read_corpus(data_dir / "posts.parquet")
    return retriever.build_index(post_ids, author_ids, created_s, meta={"model_step": step, "corpus": "world posts"})


def train_retrieval(
    config: PhoenixConfig,
    workdir: str | Path,
    data_dir: str | Path | None = None,
    progress: bool = True,
    max_steps: int | None = None,
) -> dict:
    """Train (or resume) the two-tower model; returns the latest validation record."""
    workdir, data_dir, log = prepare_run(config, workdir, data_dir)
    out = retrieval_dir(workdir)
    out.mkdir(exist_ok=True)
    mc, rc = config.model, config.retrieval
    train = pack_retrieval_examples(log, "train", mc.history_len, rc.positive_actions)
    features = featurize(train.history, mc).prefix  # hashed once, sliced per step
    target_post_ids = train.history.history_post_id.astype(np.int32)

    model = build_two_tower(mc, rc, seed=rc.seed)
    optimizer = make_optimizer(model, rc.optimizer_config())
    manager = checkpoint_manager(out, keep=rc.keep_checkpoints)
    restored = restore_training_state(manager, model, optimizer)
    start = restored["step"] if restored else 0
    metrics = MetricsLog(out / "metrics.jsonl", resume_step=start)

    dropout_root = jax.random.key(rc.seed + 1)
    pending: list = []
    end = rc.num_steps if max_steps is None else min(rc.num_steps, start + max_steps)
    bar = tqdm(initial=start, total=rc.num_steps, disable=not progress, desc="retrieval")

    def make_batch(rows: np.ndarray) -> tuple:
        prefix = jax.tree.map(lambda x: x[rows], features)
        return prefix, train.target_mask[rows], target_post_ids[rows], train.target_logq[rows]

    for step, (prefix, mask, post_ids, logq) in BatchLoader(make_batch, len(train), rc.batch_size, rc.seed, start, end):
        loss = retrieval_train_step(
            model, optimizer, prefix, mask, post_ids, logq,
            jax.random.fold_in(dropout_root, step), rc.post_id_dropout, rc.logq_correction,
        )
        pending.append(loss)
        bar.update()
        done = step + 1
        if done % rc.log_every == 0 or done == rc.num_steps:
            loss = float(np.mean([float(x) for x in pending]))
            pending.clear()
            metrics.write({"step": done, "loss": loss, "temperature": float(model.temperature)})
            bar.set_postfix(loss=f"{loss:.3f}")
        if done % rc.eval_every == 0 or done == rc.num_steps:
            metrics.write({"step": done, **validation_recall(model, config, data_dir, log, done)})
        if done % rc.checkpoint_every == 0 or done == end:
            save_checkpoint(manager, done, model, optimizer, {"step": done})
    bar.close()
    manager.wait_until_finished()
    manager.close()
    if end == rc.num_steps:
        build_world_index(Retriever(model, config), data_dir, end).save(default_index_path(workdir))
    records = metrics.read()
    plot_retrieval_training(records, out / "training.png")
    final = [r for r in records if "valid_recall" in r]
    return final[-1] if final else {}


def validation_recall(
    model: TwoTowerModel, config: PhoenixConfig, data_dir: Path, log: ImpressionLog, step: int
) -> dict:
    retriever = Retriever(model, config)
    retriever.index = build_world_index(retriever, data_dir, step)
    report = evaluate_retrieval(
        retriever, config, data_dir, "valid", max_users=config.retrieval.eval_users, with_references=False, log=log
    )
    return {"valid_recall": report["recall"]["model"]}

"""`train_retrieval(config, workdir)`: the two-tower model's training job.

It lives beside the ranker in the same workdir (`WORKDIR/retrieval/`: orbax
checkpoints, metrics.jsonl, training.png) and trains on the same world. Like
the ranker's job it resumes from the latest checkpoint with the same batch
order (every step's rows are a function of seed and step), and at the end it
embeds the world's posts into `WORKDIR/retrieval/index.npz`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import numpy as np

from phoenix.config import PhoenixConfig
from phoenix.data.batch import featurize
from phoenix.data.dataset import ImpressionLog
from phoenix.data.packing import steps_per_epoch
from phoenix.retrieval.corpus_file import read_corpus
from phoenix.retrieval.corpus_index import CorpusIndex
from phoenix.retrieval.evaluation import evaluate_retrieval
from phoenix.retrieval.examples import pack_retrieval_examples
from phoenix.retrieval.retriever import Retriever, default_index_path
from phoenix.retrieval.step import retrieval_loss
from phoenix.retrieval.two_tower import TwoTowerModel, build_two_tower
from phoenix.training.loader import sharded_batches
from phoenix.training.loop import fit
from phoenix.training.plots import plot_retrieval_training
from phoenix.training.trainer import Trainer
from phoenix.workdir import prepare_run


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
    """Train (or resume) the two-tower model; returns the best validation record."""
    config, workdir, data_dir, log = prepare_run(config, workdir, data_dir)
    config.check_retrieval()
    out = retrieval_dir(workdir)
    out.mkdir(exist_ok=True)
    mc, rc, tc = config.model, config.retrieval, config.retrieval.train
    train = pack_retrieval_examples(log, "train", mc.history_len, rc.positive_actions)
    features = featurize(train.history, mc).prefix  # hashed once, sliced per step
    target_post_ids = train.history.history_post_id.astype(np.int32)

    loss = functools.partial(retrieval_loss, post_id_dropout=rc.post_id_dropout, logq_correction=rc.logq_correction)
    trainer = Trainer("retrieval", lambda: build_two_tower(mc, rc, seed=tc.seed), loss, tc, config.mesh,
                      steps_per_epoch=steps_per_epoch(len(train), tc.batch_size))

    def make_batch(rows: np.ndarray) -> tuple:
        prefix = jax.tree.map(lambda x: x[rows], features)
        return (prefix, train.target_mask[rows], target_post_ids[rows], train.target_logq[rows]), None

    result = fit(
        trainer, sharded_batches(make_batch, len(train), tc.batch_size, tc.seed, trainer.mesh),
        lambda model: validation_recall(model, config, data_dir, log), metric="valid_recall_largest_k",
        workdir=out, progress=progress, max_steps=max_steps, plot=plot_retrieval_training,
    )
    if result.stopped_by != "max_steps":  # a finished run (schedule, patience or budget) indexes its best model
        index = build_world_index(Retriever(trainer.model, config), data_dir, max(result.best_step, 0))
        index.save(default_index_path(workdir))
    return result.best_record


def validation_recall(model: TwoTowerModel, config: PhoenixConfig, data_dir: Path, log: ImpressionLog) -> dict:
    retriever = Retriever(model, config)
    retriever.index = build_world_index(retriever, data_dir, 0)
    report = evaluate_retrieval(
        retriever, config, data_dir, "valid", max_users=config.retrieval.train.eval_examples,
        with_references=False, log=log,
    )
    recall = report["recall"]["model"]  # {"@100": r, "@1000": r}: early stopping watches the largest K
    return {"recall": recall, "recall_largest_k": recall[max(recall, key=lambda k: int(k[1:]))]}

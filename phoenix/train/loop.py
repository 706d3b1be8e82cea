"""`train_and_evaluate(config, workdir)`: the ranker's training job.

Resumable: the latest orbax checkpoint restores parameters, optimizer and step,
and the batch of every step is a fixed function of (seed, step), so a killed
run picks up exactly where the checkpoint left it with the same data order.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from phoenix.config import PhoenixConfig
from phoenix.eval.evaluate import predict_examples
from phoenix.eval.metrics import log_loss, roc_auc
from phoenix.model.batch import featurize
from phoenix.model.ranker import build_ranker
from phoenix.train.checkpoint import (
    CheckpointError,
    checkpoint_manager,
    read_run_data_dir,
    restore_training_state,
    save_checkpoint,
    write_run_data_dir,
    write_workdir_config,
)
from phoenix.train.loader import BatchLoader
from phoenix.train.metrics_log import MetricsLog
from phoenix.train.packing import PackedExamples, pack_examples
from phoenix.train.plots import plot_training
from phoenix.train.step import make_optimizer, train_step
from phoenix.world.generator import generate_world
from phoenix.world.io import ImpressionLog, read_impressions, read_metadata, write_world


def ensure_world(config: PhoenixConfig, data_dir: str | Path) -> Path:
    """Generate the config's world into `data_dir` unless one is already there."""
    data_dir = Path(data_dir)
    if not (data_dir / "world.json").is_file():
        write_world(generate_world(config.world, config.model.actions), data_dir)
    elif read_metadata(data_dir)["config"] != dataclasses.asdict(config.world):
        raise ValueError(f"{data_dir / 'world.json'}: this world was generated from another [world] config")
    return data_dir


def prepare_run(
    config: PhoenixConfig, workdir: str | Path, data_dir: str | Path | None = None
) -> tuple[Path, Path, ImpressionLog]:
    """What every training job does first: the absolute workdir with its config recorded, the world
    it trains on, and that world's impressions.

    The world is `data_dir` if given, else the one the workdir already trains on (so a resumed job
    keeps its world), else a world generated from the config in WORKDIR/world.
    """
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    write_workdir_config(config, workdir)
    if data_dir is None:
        try:
            data_dir = read_run_data_dir(workdir)
        except CheckpointError:
            data_dir = workdir / "world"
        if Path(data_dir) == workdir / "world":
            data_dir = ensure_world(config, data_dir)
    data_dir = Path(data_dir).absolute()
    write_run_data_dir(workdir, data_dir)
    log = read_impressions(data_dir)
    if log.actions != config.model.actions:
        raise ValueError(f"{data_dir}: world actions {log.actions} differ from model.actions {config.model.actions}")
    return workdir, data_dir, log


def validation_metrics(model, config: PhoenixConfig, examples: PackedExamples) -> dict:
    _, probs = predict_examples(model, config.model, examples)
    real = examples.impression_id > 0
    labels = examples.labels[real]  # [M, A]
    aucs = {a: roc_auc(labels[:, i], probs[:, i]) for i, a in enumerate(config.model.actions)}
    return {
        "valid_loss": float(np.mean([log_loss(labels[:, i], probs[:, i]) for i in range(labels.shape[1])])),
        "valid_auc": aucs,
        "valid_mean_auc": float(np.nanmean(list(aucs.values()))),
    }


def train_and_evaluate(
    config: PhoenixConfig,
    workdir: str | Path,
    data_dir: str | Path | None = None,
    progress: bool = True,
    max_steps: int | None = None,
) -> dict:
    """Train (or resume) in `workdir`; returns the latest validation metrics.

    `max_steps` stops this invocation early (after a checkpoint), e.g. to
    time-box a job; running again resumes from there.
    """
    workdir, data_dir, log = prepare_run(config, workdir, data_dir)
    mc, tc = config.model, config.train
    train = pack_examples(log, "train", mc.history_len, mc.num_candidates)
    train_features = featurize(train.request, mc)  # hashed once, sliced per step
    valid = pack_examples(log, "valid", mc.history_len, mc.num_candidates)
    valid = valid.take(np.random.default_rng(tc.seed).permutation(len(valid))[: tc.eval_examples])

    model = build_ranker(mc, seed=tc.seed)
    optimizer = make_optimizer(model, tc)
    manager = checkpoint_manager(workdir, keep=tc.keep_checkpoints)
    restored = restore_training_state(manager, model, optimizer)
    start = restored["step"] if restored else 0
    metrics = MetricsLog(workdir / "metrics.jsonl", resume_step=start)

    dropout_root = jax.random.key(tc.seed)
    pending: list = []
    end = tc.num_steps if max_steps is None else min(tc.num_steps, start + max_steps)
    bar = tqdm(initial=start, total=tc.num_steps, disable=not progress, desc="train")
    loader = BatchLoader(lambda rows: (train_features.take(rows), train.labels[rows]),
                         len(train), tc.batch_size, tc.seed, start, end)
    for step, (batch, labels) in loader:
        key = jax.random.fold_in(dropout_root, step)  # a function of the step: resumable
        loss = train_step(model, optimizer, batch, labels, key, tc.post_id_dropout)
        pending.append(loss)
        bar.update()
        done = step + 1
        if done % tc.log_every == 0 or done == tc.num_steps:
            loss = float(np.mean([float(x) for x in pending]))
            pending.clear()
            metrics.write({"step": done, "loss": loss, "examples": done * tc.batch_size})
            bar.set_postfix(loss=f"{loss:.4f}")
        if done % tc.eval_every == 0 or done == tc.num_steps:
            metrics.write({"step": done, **validation_metrics(model, config, valid)})
        if done % tc.checkpoint_every == 0 or done == end:
            save_checkpoint(manager, done, model, optimizer, {"step": done})
    bar.close()
    manager.wait_until_finished()
    manager.close()
    records = metrics.read()
    plot_training(records, workdir / "training.png")
    final = [r for r in records if "valid_auc" in r]
    return final[-1] if final else {}

"""`train_and_evaluate(config, workdir)`: the ranker's training job.

Resumable: the latest orbax checkpoint restores parameters, optimizer and step,
and the batch of every step is a fixed function of (seed, step), so a killed
run picks up exactly where the checkpoint left it with the same data order.

The same job runs on one CPU and on many hosts: the state lives on the
`[mesh]` device mesh (`ShardedTrainer`), each process reads only its own
users' impressions and feeds its share of every global batch, orbax writes
and reads the sharded checkpoint from every process, and only process 0
writes the world, the metrics log and the plot.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from phoenix.config import ConfigError, PhoenixConfig
from phoenix.eval.evaluate import predict_examples
from phoenix.eval.metrics import log_loss, roc_auc
from phoenix.model.batch import featurize
from phoenix.train.checkpoint import (
    CheckpointError,
    checkpoint_manager,
    read_run_data_dir,
    restore_training_state,
    save_checkpoint,
    write_run_data_dir,
    write_workdir_config,
)
from phoenix.train.distributed import is_main_process, process_shard, sync_processes
from phoenix.train.loader import BatchLoader
from phoenix.train.metrics_log import MetricsLog
from phoenix.train.packing import PackedExamples, pack_examples
from phoenix.train.partitioning import batch_sharding, make_mesh
from phoenix.train.plots import plot_training
from phoenix.train.sharded_training import ShardedTrainer
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
    if data_dir is None:
        try:
            data_dir = read_run_data_dir(workdir)
        except CheckpointError:
            data_dir = workdir / "world"
    data_dir = Path(data_dir).absolute()
    if is_main_process():  # one writer; the others wait at the barrier below
        workdir.mkdir(parents=True, exist_ok=True)
        write_workdir_config(config, workdir)
        if data_dir == workdir / "world":
            ensure_world(config, data_dir)
        write_run_data_dir(workdir, data_dir)
    sync_processes("phoenix-prepare-run")
    log = read_impressions(data_dir, user_shard=process_shard())
    if log.actions != config.model.actions:
        raise ValueError(f"{data_dir}: world actions {log.actions} differ from model.actions {config.model.actions}")
    return workdir, data_dir, log


def check_batch_fits_mesh(batch_size: int, data_axis: int) -> None:
    """The global batch splits evenly over the mesh's data axis (`BatchLoader` checks the processes)."""
    if batch_size % data_axis:
        raise ConfigError(f"train.batch_size: {batch_size} does not split over the mesh's data axis ({data_axis})")


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

    mesh = make_mesh(config.mesh)
    check_batch_fits_mesh(tc.batch_size, mesh.shape["data"])
    trainer = ShardedTrainer.for_ranker(mc, tc, mesh, config.mesh)
    manager = checkpoint_manager(workdir, keep=tc.keep_checkpoints)
    model, optimizer = trainer.objects()
    restored = restore_training_state(manager, model, optimizer)
    if restored:
        trainer.load(model, optimizer)
    start = restored["step"] if restored else 0
    main = is_main_process()
    metrics = MetricsLog(workdir / "metrics.jsonl", resume_step=start) if main else None

    dropout_root = jax.random.key(tc.seed)
    pending: list = []
    end = tc.num_steps if max_steps is None else min(tc.num_steps, start + max_steps)
    bar = tqdm(initial=start, total=tc.num_steps, disable=not progress, desc="train")
    loader = BatchLoader(lambda rows: (train_features.take(rows), train.labels[rows]),
                         len(train), tc.batch_size, tc.seed, start, end, sharding=batch_sharding(mesh),
                         process_index=jax.process_index(), process_count=jax.process_count())
    for step, (batch, labels) in loader:
        key = jax.random.fold_in(dropout_root, step)  # a function of the step: resumable
        pending.append(trainer.step(batch, labels, key))
        bar.update()
        done = step + 1
        if done % tc.log_every == 0 or done == tc.num_steps:
            loss = float(np.mean([float(x) for x in pending]))
            pending.clear()
            if main:
                metrics.write({"step": done, "loss": loss, "examples": done * tc.batch_size})
                bar.set_postfix(loss=f"{loss:.4f}")
        # Validation needs the whole model on one host's view: single-process jobs only; a
        # multi-host job is evaluated afterwards from its checkpoint (`phoenix eval`).
        if (done % tc.eval_every == 0 or done == tc.num_steps) and jax.process_count() == 1:
            metrics.write({"step": done, **validation_metrics(trainer.objects()[0], config, valid)})
        if done % tc.checkpoint_every == 0 or done == end:
            save_checkpoint(manager, done, *trainer.objects(), {"step": done})
    bar.close()
    manager.wait_until_finished()
    manager.close()
    if not main:
        return {}
    records = metrics.read()
    plot_training(records, workdir / "training.png")
    final = [r for r in records if "valid_auc" in r]
    return final[-1] if final else {}

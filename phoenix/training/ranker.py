"""`train_and_evaluate(config, workdir)`: the ranker's training job.

The ranker trains through the one loop (`phoenix.training.loop.fit`) on the
`[mesh]` device mesh: each process reads only its own users' impressions and
feeds its share of every global batch, orbax writes and reads the sharded
checkpoint from every process, and only process 0 writes the world, the
metrics log and the plot. Resumable: the latest checkpoint restores
parameters, optimizer and step, and the batch of every step is a fixed
function of (seed, step). Validation (mean per-head AUC on a sample of the
validation split) picks the best step, which `phoenix eval` and serving load.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from phoenix.config import ConfigError, PhoenixConfig
from phoenix.data.batch import featurize
from phoenix.data.packing import PackedExamples, pack_examples
from phoenix.evaluation.metrics import log_loss, roc_auc
from phoenix.evaluation.ranker import predict_examples
from phoenix.model.ranker import PhoenixRanker, build_ranker
from phoenix.parallel.partitioning import batch_sharding, make_mesh
from phoenix.training.loader import BatchLoader
from phoenix.training.loop import fit
from phoenix.training.optimizer import make_optimizer
from phoenix.training.plots import plot_training
from phoenix.training.ranker_loss import ranker_loss
from phoenix.training.trainer import Trainer
from phoenix.workdir import prepare_run


def check_batch_fits_mesh(batch_size: int, data_axis: int) -> None:
    """The global batch splits evenly over the mesh's data axis (`BatchLoader` checks the processes)."""
    if batch_size % data_axis:
        raise ConfigError(f"train.batch_size: {batch_size} does not split over the mesh's data axis ({data_axis})")


def validation_metrics(model: PhoenixRanker, config: PhoenixConfig, examples: PackedExamples) -> dict:
    _, probs = predict_examples(model, config.model, examples)
    real = examples.impression_id > 0
    labels = examples.labels[real]  # [M, A]
    aucs = {a: roc_auc(labels[:, i], probs[:, i]) for i, a in enumerate(config.model.actions)}
    return {
        "loss": float(np.mean([log_loss(labels[:, i], probs[:, i]) for i in range(labels.shape[1])])),
        "auc": aucs,
        "mean_auc": float(np.nanmean(list(aucs.values()))),
    }


def ranker_trainer(config: PhoenixConfig, mesh: jax.sharding.Mesh) -> Trainer:
    mc, tc = config.model, config.train

    def build():
        model = build_ranker(mc, seed=tc.seed)
        return model, make_optimizer(model, tc, tc.num_steps)

    return Trainer(build, ranker_loss, mesh, config.mesh)


def train_and_evaluate(
    config: PhoenixConfig,
    workdir: str | Path,
    data_dir: str | Path | None = None,
    progress: bool = True,
    max_steps: int | None = None,
) -> dict:
    """Train (or resume) in `workdir`; returns the best validation record.

    `max_steps` stops this invocation early (after a checkpoint), e.g. to
    time-box a job; running again resumes from there.
    """
    workdir, data_dir, log = prepare_run(config, workdir, data_dir)
    mc, tc = config.model, config.train
    if tc.num_epochs:
        raise ConfigError("train.num_epochs: the ranker trains by steps; set train.num_steps")
    train = pack_examples(log, "train", mc.history_len, mc.num_candidates)
    features = featurize(train.request, mc)  # hashed once, sliced per step
    valid = pack_examples(log, "valid", mc.history_len, mc.num_candidates)
    valid = valid.take(np.random.default_rng(tc.seed).permutation(len(valid))[: tc.eval_examples])

    mesh = make_mesh(config.mesh)
    check_batch_fits_mesh(tc.batch_size, mesh.shape["data"])
    trainer = ranker_trainer(config, mesh)

    def batches(start: int, end: int) -> BatchLoader:
        return BatchLoader(
            lambda rows: ((features.take(rows), train.labels[rows]), None), len(train), tc.batch_size, tc.seed,
            start, end, sharding=batch_sharding(mesh), process_index=jax.process_index(),
            process_count=jax.process_count(),
        )

    result = fit(
        trainer, batches, lambda model: validation_metrics(model, config, valid), tc,
        metric="valid_mean_auc", workdir=workdir, name="train", progress=progress, max_steps=max_steps,
        plot=plot_training,
    )
    validations = [r for r in result.validations if r["step"] == result.best_step]
    return validations[-1] if validations else {}

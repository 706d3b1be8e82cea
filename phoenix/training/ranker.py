"""`train_and_evaluate(config, workdir)`: the ranker's training job.

The ranker trains through the one loop (`phoenix.training.loop.fit`) on the
`[mesh]` device mesh: each process reads only its own users' impressions and
feeds its share of every global batch, orbax writes and reads the sharded
checkpoint from every process, and only process 0 writes the world, the
metrics log and the plot. Resumable: the latest checkpoint restores
parameters, optimizer and step, and the batch of every step is a fixed
function of (seed, step). Validation (mean per-head AUC on a sample of the
validation split) picks the best step, which `phoenix eval` and serving load;
then each head's calibration is fitted on the whole validation split for that
step (`phoenix.training.calibration`).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from phoenix.config import ModelConfig, PhoenixConfig
from phoenix.data.batch import RankerBatch, featurize
from phoenix.data.packing import PackedExamples, pack_examples, steps_per_epoch
from phoenix.evaluation.metrics import log_loss, roc_auc
from phoenix.evaluation.ranker import predict_examples
from phoenix.model.ranker import PhoenixRanker, build_ranker
from phoenix.training.calibration import fit_calibration
from phoenix.training.loader import sharded_batches
from phoenix.training.loop import fit
from phoenix.training.plots import plot_training
from phoenix.training.ranker_loss import ranker_loss
from phoenix.training.trainer import Trainer
from phoenix.workdir import prepare_run


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


def _features_and_labels(examples: PackedExamples, config: ModelConfig) -> tuple[RankerBatch, np.ndarray]:
    """One batch read out of the log and hashed (a few milliseconds: the packed set stays log rows)."""
    return featurize(examples.request, config), examples.labels


def ranker_trainer(config: PhoenixConfig, num_examples: int) -> Trainer:
    """The ranker on the mesh; an epoch is one pass over `num_examples` packed examples."""
    tc = config.train
    return Trainer("train", lambda: build_ranker(config.model, seed=tc.seed), ranker_loss, tc, config.mesh,
                   steps_per_epoch=steps_per_epoch(num_examples, tc.batch_size))


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
    config, workdir, data_dir, log = prepare_run(config, workdir, data_dir)
    mc, tc = config.model, config.train
    train = pack_examples(log, "train", mc.history_len, mc.num_candidates)
    valid_all = pack_examples(log, "valid", mc.history_len, mc.num_candidates)
    valid = valid_all.take(np.random.default_rng(tc.seed).permutation(len(valid_all))[: tc.eval_examples])

    trainer = ranker_trainer(config, len(train))
    batches = sharded_batches(
        lambda rows: (_features_and_labels(train.take(rows), mc), None), len(train), tc.batch_size, tc.seed,
        trainer.mesh,
    )
    result = fit(
        trainer, batches, lambda model: validation_metrics(model, config, valid), metric="valid_mean_auc",
        workdir=workdir, progress=progress, max_steps=max_steps, plot=plot_training,
    )
    if result.best_step >= 0 and result.stopped_by != "max_steps" and jax.process_count() == 1:
        # The kept parameters say probabilities that match the validation split's rates (evaluated on test).
        fit_calibration(trainer.model, mc, valid_all, workdir, result.best_step)
    return result.best_record

"""Evaluate a trained workdir on a split: the model, the oracle and a baseline side by side.

The oracle is the world's ground-truth probability: no model can rank better
on average, so `oracle_auc - auc` is how much is left to learn. The baseline
is post popularity (`phoenix.evaluation.popularity`).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from phoenix.config import ModelConfig
from phoenix.data.batch import RankerBatch, featurize
from phoenix.data.dataset import SPLITS, ImpressionLog, read_impressions
from phoenix.data.packing import PackedExamples, pack_examples
from phoenix.data.world.io import read_truth
from phoenix.evaluation.metrics import calibration, log_loss, relative_cross_entropy, roc_auc
from phoenix.evaluation.popularity import popularity_probs
from phoenix.model.ranker import PhoenixRanker
from phoenix.workdir import load_model, read_run_data_dir


@nnx.jit
def predict_probs(model: PhoenixRanker, batch: RankerBatch) -> jnp.ndarray:  # [B, C, A]
    """The prefix path (equal to the full path, linear in C), as serving scores."""
    return jax.nn.sigmoid(model.score_candidates(batch))


def predict_examples(
    model: PhoenixRanker, config: ModelConfig, examples: PackedExamples, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of every real candidate: (impression ids [M], probs [M, A])."""
    features = featurize(examples.request, config)  # validated and hashed once
    ids, probs = [], []
    for start in range(0, len(examples), batch_size):
        rows = np.arange(start, min(start + batch_size, len(examples)))
        padded = np.resize(rows, batch_size)  # fixed shape: one compilation
        p = np.asarray(predict_probs(model, features.take(padded)))[: rows.size]  # [b, C, A]
        real = examples.impression_id[rows] > 0  # [b, C]
        ids.append(examples.impression_id[rows][real])
        probs.append(p[real])
    return np.concatenate(ids), np.concatenate(probs)


def head_report(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    return {
        "auc": roc_auc(labels, probs),
        "logloss": log_loss(labels, probs),
        "rce": relative_cross_entropy(labels, probs),
        "calibration": calibration(labels, probs),
    }


def _rows_of(all_ids: np.ndarray, wanted: np.ndarray, source: str) -> np.ndarray:
    """Positions of `wanted` ids in `all_ids`; every id must be present."""
    order = np.argsort(all_ids, kind="stable")
    pos = np.minimum(np.searchsorted(all_ids, wanted, sorter=order), all_ids.size - 1)
    rows = order[pos]
    missing = all_ids[rows] != wanted
    if missing.any():
        raise ValueError(f"{source}: no impression id {int(wanted[missing][0])}")
    return rows


def compare_on_split(
    log: ImpressionLog,
    split: str,
    impression_ids: np.ndarray,  # [M]
    model_probs: np.ndarray,  # [M, A]
    truth_ids: np.ndarray,
    truth_probs: np.ndarray,  # [M', A]
) -> dict:
    """Per-head metrics of the model, the oracle and the popularity baseline."""
    rows = _rows_of(log.impression_id, impression_ids, "impressions")
    expected = np.flatnonzero(log.split == SPLITS.index(split))
    if not np.array_equal(np.sort(rows), expected):
        raise ValueError(f"split {split!r}: model scored {rows.size} impressions, the split has {expected.size}")
    oracle = truth_probs[_rows_of(truth_ids, impression_ids, f"truth/{split}.parquet")]
    baseline = popularity_probs(log, np.flatnonzero(log.split == SPLITS.index("train")), rows)
    heads = {}
    for a, action in enumerate(log.actions):
        y = log.labels[rows, a]
        best, base = head_report(y, oracle[:, a]), head_report(y, baseline[:, a])
        heads[action] = {
            **head_report(y, model_probs[:, a]),
            **{f"oracle_{k}": v for k, v in best.items()},
            **{f"baseline_{k}": v for k, v in base.items()},
            "positive_rate": float(y.mean()),
        }
    keys = ("auc", "oracle_auc", "baseline_auc", "logloss", "rce", "oracle_rce", "baseline_rce")
    mean = {k: float(np.nanmean([h[k] for h in heads.values()])) for k in keys}
    mean["oracle_auc_gap"] = mean["oracle_auc"] - mean["auc"]
    return {"split": split, "impressions": int(rows.size), "mean": mean, "heads": heads}


def evaluate_workdir(workdir: str | Path, data_dir: str | Path | None = None, split: str = "test") -> dict:
    """Evaluate the latest checkpoint of `workdir` on a split of its world."""
    workdir = Path(workdir)
    data_dir = read_run_data_dir(workdir) if data_dir is None else data_dir
    model, config, step = load_model(workdir)
    log = read_impressions(data_dir)
    if log.actions != config.model.actions:
        raise ValueError(f"{data_dir}: world actions {log.actions} differ from model.actions {config.model.actions}")
    examples = pack_examples(log, split, config.model.history_len, config.model.num_candidates)
    ids, probs = predict_examples(model, config.model, examples)
    truth_ids, truth_probs = read_truth(data_dir, split, log.actions)
    report = compare_on_split(log, split, ids, probs, truth_ids, truth_probs)
    return {"workdir": str(workdir), "step": step, **report}

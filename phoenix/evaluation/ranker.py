"""Evaluate a trained workdir on a split of any dataset: the model beside a baseline (and the oracle).

Per head: AUC, GAUC (per user), log-loss, RCE and calibration with its 95%
interval over users (and, on a synthetic world, against the truth); per request
(or user-day): NDCG@10 by the weighted score. The baseline is post popularity
fitted on the training split (`phoenix.evaluation.popularity`). A synthetic
world also has the oracle, its ground-truth probability: no model can rank
better on average. Between the two sits the ceiling (`phoenix.data.world.ceiling`):
the oracle without what a post first shown after training hides from any ranker
of ids, so `ceiling_auc - auc` is how much is left to learn.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from phoenix.config import ModelConfig, PhoenixConfig, load_scoring_config
from phoenix.data.batch import RankerBatch, featurize
from phoenix.data.dataset import SPLITS, ImpressionLog, read_impressions
from phoenix.data.packing import PackedExamples, pack_examples
from phoenix.data.world.ceiling import split_ceiling
from phoenix.data.world.io import has_truth, read_truth
from phoenix.data.world.oracle import WorldOracle
from phoenix.evaluation.group_metrics import group_auc, group_ndcg
from phoenix.evaluation.metrics import calibration, calibration_interval, log_loss, relative_cross_entropy, roc_auc
from phoenix.evaluation.popularity import popularity_probs
from phoenix.model.ranker import PhoenixRanker
from phoenix.model.weighted_score import WeightedScorer
from phoenix.workdir import load_model, read_run_data_dir


@nnx.jit
def predict_probs(model: PhoenixRanker, batch: RankerBatch) -> jnp.ndarray:  # [B, C, A]
    """P(action) of every candidate, on the path training and serving run."""
    return jax.nn.sigmoid(model(batch))


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


def head_report(labels: np.ndarray, probs: np.ndarray, users: np.ndarray) -> dict[str, float]:
    return {
        "auc": roc_auc(labels, probs),
        "gauc": group_auc(labels, probs, users)[0],
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


def request_groups(log: ImpressionLog, rows: np.ndarray) -> tuple[np.ndarray, str]:
    """The request of each row: the log's request id, else the user's day (UTC)."""
    if log.request_id is not None:
        return log.request_id[rows], "request"
    pairs = np.stack([log.user_id[rows], log.time_s[rows] // 86_400], axis=1)
    return np.unique(pairs, axis=0, return_inverse=True)[1].reshape(-1), "user-day"


def ranking_report(labels: np.ndarray, predictors: dict, groups: np.ndarray, scorer: WeightedScorer | None) -> dict:
    """NDCG@10 of each request's impressions ordered by each predictor's weighted score.

    An impression's gain is what the weighted score would give the user's actual actions,
    floored at 0: max(0, Σ_a w_a·y_a).
    """
    if scorer is None:
        return {}
    gains = np.maximum(scorer.combined(labels), 0.0)
    out = {name: group_ndcg(gains, scorer.combined(p), groups, k=10) for name, p in predictors.items()}
    return {f"{name}_ndcg@10": value for name, (value, _) in out.items()} | {"ndcg_groups": out["model"][1]}


def compare_on_split(
    log: ImpressionLog,
    split: str,
    impression_ids: np.ndarray,  # [M]
    model_probs: np.ndarray,  # [M, A]
    truth: tuple[np.ndarray, np.ndarray] | None = None,  # ids [M'], probabilities [M', A]
    scorer: WeightedScorer | None = None,
    ceiling: tuple[np.ndarray, np.ndarray] | None = None,  # ids [M'], probabilities [M', A]
) -> dict:
    """Per-head metrics of the model, the popularity baseline and (with ground truth) the oracle
    and the ceiling, and NDCG@10 per request by the weighted score."""
    rows = _rows_of(log.impression_id, impression_ids, "impressions")
    expected = np.flatnonzero(log.split == SPLITS.index(split))
    if not np.array_equal(np.sort(rows), expected):
        raise ValueError(f"split {split!r}: model scored {rows.size} impressions, the split has {expected.size}")
    predictors = {"model": model_probs,
                  "baseline": popularity_probs(log, np.flatnonzero(log.split == SPLITS.index("train")), rows)}
    if truth is not None:
        predictors["oracle"] = truth[1][_rows_of(truth[0], impression_ids, f"truth/{split}.parquet")]
    if ceiling is not None:
        predictors["ceiling"] = ceiling[1][_rows_of(ceiling[0], impression_ids, "ceiling")]
    users, labels = log.user_id[rows], log.labels[rows]
    intervals = {name: calibration_interval(labels, predictors[name], users)
                 for name in ("model", "oracle") if name in predictors}  # (low [A], high [A])
    heads = {}
    for a, action in enumerate(log.actions):
        y = labels[:, a]
        reports = {name: head_report(y, p[:, a], users) for name, p in predictors.items()}
        for name, (low, high) in intervals.items():
            reports[name] |= {"calibration_low": float(low[a]), "calibration_high": float(high[a])}
        if truth is not None:  # the model's mean over the truth's: calibration without the labels' noise
            truth_mean = predictors["oracle"][:, a].mean()
            reports["model"]["calibration_to_truth"] = float(model_probs[:, a].mean() / truth_mean)
        heads[action] = {
            **reports.pop("model"),
            **{f"{name}_{k}": v for name, r in reports.items() for k, v in r.items()},
            "positive_rate": float(y.mean()),
        }
    keys = [k for k in next(iter(heads.values())) if k != "positive_rate" and not k.endswith(("_low", "_high"))]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a head with no positives in the split has no AUC
        mean = {k: float(np.nanmean([h[k] for h in heads.values()])) for k in keys}
    if truth is not None:
        mean["oracle_auc_gap"] = mean["oracle_auc"] - mean["auc"]
    if ceiling is not None:
        mean["ceiling_auc_gap"] = mean["ceiling_auc"] - mean["auc"]
    groups, group_kind = request_groups(log, rows)
    ranking = ranking_report(labels, predictors, groups, scorer) | {"groups": group_kind}
    return {"split": split, "impressions": int(rows.size), "mean": mean, "heads": heads, "ranking": ranking}


def evaluation_scorer(config: PhoenixConfig) -> tuple[WeightedScorer | None, str]:
    """The weighted scorer of the config's weights file, or None and why (a head without a weight)."""
    try:
        return WeightedScorer(load_scoring_config(config.pipeline.weights_path), config.model.actions), ""
    except ValueError as err:
        return None, str(err)


def evaluate_workdir(workdir: str | Path, data_dir: str | Path | None = None, split: str = "test") -> dict:
    """Evaluate the model `workdir` serves on a split of its dataset (or of `data_dir`)."""
    workdir = Path(workdir)
    data_dir = read_run_data_dir(workdir) if data_dir is None else Path(data_dir)
    model, config, step = load_model(workdir)
    log = read_impressions(data_dir)
    if log.actions != config.model.actions:
        raise ValueError(f"{data_dir}: dataset actions {log.actions} differ from the model's {config.model.actions}")
    examples = pack_examples(log, split, config.model.history_len, config.model.num_candidates)
    ids, probs = predict_examples(model, config.model, examples)
    truth = ceiling = None
    if has_truth(data_dir):
        truth = read_truth(data_dir, split, log.actions)
        ceiling = split_ceiling(WorldOracle(data_dir), log, split)
    scorer, why = evaluation_scorer(config)
    report = compare_on_split(log, split, ids, probs, truth, scorer, ceiling)
    if scorer is None:
        report["ranking"]["skipped"] = why
    return {"workdir": str(workdir), "data": str(data_dir), "step": step, **report}

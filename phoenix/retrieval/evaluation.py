"""Retrieval quality on a dataset: recall@K against popularity (and, on a synthetic world, the oracle).

One query per user at the start of a split: the user's engagement history up
to then, every post of the world as the corpus, and the posts the user had
already been shown excluded. Relevant items are the posts the user took a
positive action on during the split (`retrieval.positive_actions`). Recall@K
is averaged over users.

Reference points, measured on the same queries:
* oracle (a synthetic world only) — the true P(any positive action) for (user, post): the best
  a model of engagement can do without knowing what will be shown;
* popularity — the posts with most positives in the window of the same length
  just before the query time (the strong, recency-aware version), and
* popularity_all_time — most positives ever before the query time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from phoenix.config import PhoenixConfig
from phoenix.data.dataset import SPLITS, ImpressionLog, read_impressions, read_metadata
from phoenix.data.world.io import has_truth
from phoenix.data.world.oracle import WorldOracle
from phoenix.retrieval.examples import RetrievalQueries, positive_mask, retrieval_queries
from phoenix.retrieval.retriever import Retriever

DEFAULT_KS = (100, 1000)


def recall_at_k(retrieved: np.ndarray, relevant: list[np.ndarray], k: int) -> float:
    """Mean over queries of |top-k ∩ relevant| / |relevant| (retrieved [Q, >=k] post ids, best first)."""
    if retrieved.shape[0] != len(relevant):
        raise ValueError(f"retrieved: {retrieved.shape[0]} rows for {len(relevant)} queries")
    if retrieved.shape[1] < k:
        raise ValueError(f"retrieved: {retrieved.shape[1]} results per query, fewer than k={k}")
    hits = [np.isin(rel, top[:k]).mean() for top, rel in zip(retrieved, relevant) if rel.size]
    return float(np.mean(hits)) if hits else float("nan")


def model_top_k(retriever: Retriever, queries: RetrievalQueries, k: int, batch: int = 256) -> np.ndarray:
    """The model's top-k post ids per query, already-seen posts excluded."""
    out = []
    n = len(queries.relevant)
    for start in range(0, n, batch):
        rows = np.arange(start, min(n, start + batch))
        ids, _ = retriever.search(queries.history.take(rows), k, exclude_post_ids=[queries.seen[i] for i in rows])
        out.append(ids)
    return np.concatenate(out)


def _first_unseen(ranked: np.ndarray, seen: np.ndarray, k: int) -> np.ndarray:
    """The first k ids of a best-first ranking that are not in `seen`."""
    head = ranked[: k + seen.size]
    return head[~np.isin(head, seen)][:k]


def _ranked(scores: np.ndarray, post_ids: np.ndarray) -> np.ndarray:
    return post_ids[np.argsort(-scores, kind="stable")]


def popularity_top_k(
    log: ImpressionLog, queries: RetrievalQueries, post_ids: np.ndarray, at_s: int,
    window_s: float | None, positive_actions: tuple[str, ...], k: int,
) -> np.ndarray:
    """Most-engaged posts before `at_s` (within `window_s` if given), per user minus what they saw."""
    positive = positive_mask(log, positive_actions) & (log.time_s < at_s)
    if window_s is not None:
        positive &= log.time_s >= at_s - window_s
    counts = np.bincount(np.searchsorted(post_ids, log.post_id[positive]), minlength=post_ids.size)
    ranked = _ranked(counts, post_ids)  # one ranking for everybody, sorted once
    return np.stack([_first_unseen(ranked, seen, k) for seen in queries.seen])


def oracle_top_k(
    oracle: WorldOracle, queries: RetrievalQueries, post_ids: np.ndarray, positive_actions: tuple[str, ...], k: int
) -> np.ndarray:
    """Posts ranked by the true P(any positive action) on the For You surface, minus what was seen."""
    out = []
    for user, seen in zip(queries.history.user_id, queries.seen):
        probs = oracle.probabilities(int(user), post_ids, surface=0, actions=positive_actions)  # [P, A+]
        engage = 1.0 - np.prod(1.0 - probs, axis=1)  # [P]
        out.append(_first_unseen(_ranked(engage, post_ids), seen, k))
    return np.stack(out)


def evaluate_retrieval(
    retriever: Retriever, config: PhoenixConfig, data_dir: str | Path, split: str = "test",
    ks: tuple[int, ...] = DEFAULT_KS, max_users: int | None = None, with_references: bool = True,
    log: ImpressionLog | None = None,
) -> dict:
    """Recall@k of the model (and, with references, oracle and popularity) on one split.

    `log` is the world's impressions when the caller already holds them (training validates often).
    """
    data_dir = Path(data_dir)
    rc, mc = config.retrieval, config.model
    log = read_impressions(data_dir) if log is None else log
    queries = retrieval_queries(log, split, mc.history_len, rc.positive_actions, max_users, rc.train.seed)
    if not queries.relevant:
        raise ValueError(f"split {split!r}: no user has a positive action on a post they had not seen")
    post_ids = np.sort(retriever.index.post_ids)
    k_max = min(max(ks), post_ids.size)
    ks = tuple(k for k in ks if k <= post_ids.size)
    results = {"model": model_top_k(retriever, queries, k_max)}
    if with_references:
        at_s = int(read_metadata(data_dir)["split_times_s"][SPLITS.index(split) - 1])
        window = float(np.ptp(log.time_s[log.split == SPLITS.index(split)]))
        positives = rc.positive_actions
        results["popularity"] = popularity_top_k(log, queries, post_ids, at_s, window, positives, k_max)
        results["popularity_all_time"] = popularity_top_k(log, queries, post_ids, at_s, None, positives, k_max)
        if has_truth(data_dir):  # a synthetic world: the best possible retrieval too
            results["oracle"] = oracle_top_k(WorldOracle(data_dir), queries, post_ids, positives, k_max)
    report = {
        "split": split, "users": len(queries.relevant), "corpus": int(post_ids.size),
        "relevant_per_user": float(np.mean([r.size for r in queries.relevant])),
        "recall": {name: {f"@{k}": recall_at_k(ids, queries.relevant, k) for k in ks} for name, ids in results.items()},
    }
    if with_references:
        k = max(ks)
        report["model_over_popularity"] = report["recall"]["model"][f"@{k}"] / report["recall"]["popularity"][f"@{k}"]
    return report

"""A ranked For You feed for one user of the synthetic world, checked against the truth.

The candidates are fresh posts (under 48 hours old at the world's end) the user
has not been shown. The trained ranker scores them with the user's latest
engagement history; the weighted scorer (X's August 2026 weights) turns the
probabilities into one score; the world's oracle says what the user would
really have done, so the feed shows how much true value the ranking captured.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from phoenix.config import DEFAULT_WEIGHTS, load_scoring_config
from phoenix.serving.service import CandidatePost, Engagement, RankerService
from phoenix.world.generator import SPLITS
from phoenix.world.io import read_impressions, read_metadata
from phoenix.world.oracle import WorldOracle
from scorers.weighted import WeightedScorer

MAX_AGE_S = 48 * 3600


@dataclasses.dataclass
class Feed:
    user_id: int
    history_len: int
    actions: tuple[str, ...]
    post_id: np.ndarray  # [C] ranked best first
    author_id: np.ndarray  # [C]
    score: np.ndarray  # [C] weighted score from the model
    true_score: np.ndarray  # [C] weighted score from the oracle
    probs: np.ndarray  # [C, A]
    true_probs: np.ndarray  # [C, A]

    def value_at(self, k: int) -> dict[str, float]:
        """Mean true score of the model's top k, the oracle's top k, and all candidates."""
        return {
            "model": float(self.true_score[:k].mean()),
            "oracle": float(np.sort(self.true_score)[::-1][:k].mean()),
            "random": float(self.true_score.mean()),
        }


def sample_feed(
    workdir: str | Path, user_id: int | None = None, num_candidates: int = 500, seed: int = 0
) -> Feed:
    workdir = Path(workdir)
    world_dir = Path(json.loads((workdir / "run.json").read_text())["data_dir"])
    service = RankerService.from_workdir(workdir, keep_recent_history=True)
    log = read_impressions(world_dir)
    oracle = WorldOracle(world_dir)
    rng = np.random.default_rng(seed)
    if user_id is None:
        test_users = np.unique(log.user_id[log.split == SPLITS.index("test")])
        user_id = int(rng.choice(test_users))
    mine = log.user_id == user_id
    engaged = np.flatnonzero(mine & log.labels.any(axis=1))[-service.config.history_len :]
    history = [
        Engagement(
            int(log.post_id[r]),
            int(log.author_id[r]),
            tuple(a for a, hit in zip(log.actions, log.labels[r]) if hit),
            int(log.surface[r]),
        )
        for r in engaged
    ]
    horizon = int(read_metadata(world_dir)["config"]["days"] * 86400)
    created = oracle.posts.created_s
    fresh = np.flatnonzero((created <= horizon) & (created > horizon - MAX_AGE_S)) + 1
    fresh = np.setdiff1d(fresh, log.post_id[mine])
    post_ids = rng.choice(fresh, min(num_candidates, fresh.size), replace=False)
    author_ids = oracle.post_author_ids(post_ids)
    probs = service.score(user_id, history, [CandidatePost(int(p), int(a)) for p, a in zip(post_ids, author_ids)])
    true_probs = oracle.probabilities(user_id, post_ids)
    scorer = WeightedScorer(load_scoring_config(DEFAULT_WEIGHTS), service.config.actions)
    score, true_score = scorer(probs), scorer(true_probs)
    order = np.argsort(-score, kind="stable")
    return Feed(
        user_id, len(history), service.config.actions, post_ids[order], author_ids[order],
        score[order], true_score[order], probs[order], true_probs[order],
    )


def render_feed(feed: Feed, top: int = 10) -> str:
    short = [a[:6] for a in feed.actions]
    lines = [
        f"user {feed.user_id}: {feed.history_len} history items, {feed.post_id.size} fresh candidates; "
        "top posts with P(action) from the model (true value in brackets)",
        f"{'#':>2s} {'post':>6s} {'author':>6s} {'score':>7s} {'(true)':>7s} " + " ".join(f"{s:>6s}" for s in short),
    ]
    for i in range(min(top, feed.post_id.size)):
        probs = " ".join(f"{p:6.3f}" for p in feed.probs[i])
        head = f"{i + 1:2d} {feed.post_id[i]:6d} {feed.author_id[i]:6d} {feed.score[i]:7.3f}"
        lines.append(f"{head} ({feed.true_score[i]:5.3f}) {probs}")
    value = feed.value_at(top)
    lines.append(
        f"mean true score of the top {top}: model {value['model']:.3f}, oracle {value['oracle']:.3f}, "
        f"random {value['random']:.3f}"
    )
    return "\n".join(lines)

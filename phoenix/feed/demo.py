"""A ranked For You feed for one user of the synthetic world, checked against the truth.

The request goes through the public `Ranker` API: in-network posts come from an
in-memory store of the world's posts, out-of-network candidates from the
two-tower retrieval source when the workdir has one (`phoenix train-retrieval`),
else from fresh posts (under 48 hours old at the world's end) drawn at random. The world's
oracle then says what the user would really have done, so the feed shows how
much true value the ranking captured against the best possible order.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from candidate_pipeline.in_network import InNetworkPostStore
from candidate_pipeline.types import Candidate, HistoryItem, Query
from phoenix.config import load_scoring_config
from phoenix.data.dataset import SPLITS, ImpressionLog, read_impressions, read_metadata
from phoenix.data.world.oracle import WorldOracle
from phoenix.feed.ranker_api import RankedFeed, Ranker
from phoenix.model.weighted_score import WeightedScorer
from phoenix.workdir import read_run_data_dir

TOP = 10


@dataclasses.dataclass
class DemoFeed:
    feed: RankedFeed
    history_len: int
    true_score: dict[int, float]  # post id -> oracle weighted score, for every scored candidate

    @property
    def num_candidates(self) -> int:
        return len(self.true_score)

    @property
    def scored_by_source(self) -> dict[str, int]:
        """How many scored candidates each source supplied."""
        source_of = {i.post_id: i.source for i in self.feed.items} | {d.post_id: d.source for d in self.feed.dropped}
        names = sorted({source_of[p] for p in self.true_score})
        return {name: sum(source_of[p] == name for p in self.true_score) for name in names}

    def value_at(self, k: int = TOP) -> dict[str, float]:
        """Mean true score of the feed's top k, the oracle's best k, and a random k."""
        shown = [self.true_score[item.post_id] for item in self.feed.items[:k]]
        best = sorted(self.true_score.values(), reverse=True)[:k]
        return {
            "model": float(np.mean(shown)),
            "oracle": float(np.mean(best)),
            "random": float(np.mean(list(self.true_score.values()))),
        }


def _load_store(world_dir: Path) -> tuple[InNetworkPostStore, dict[int, tuple[int, int]]]:
    table = pq.read_table(world_dir / "posts.parquet").to_pydict()
    store = InNetworkPostStore(retention_hours=48.0)
    posts = {}
    for post_id, author_id, created in zip(table["post_id"], table["author_id"], table["created_s"]):
        posts[post_id] = (author_id, created)
        # The world shows followed accounts' posts on the following tab (surface 1).
        store.add(Candidate(post_id, author_id, created, surface=1))
    return store, posts


def world_query(log: ImpressionLog, oracle: WorldOracle, user_id: int, now: int) -> Query:
    """A world user's request at time `now`: engaged history, follows and every post shown so far."""
    if isinstance(user_id, bool) or not isinstance(user_id, int | np.integer) or not 1 <= user_id <= oracle.num_users:
        raise ValueError(f"user_id: {user_id!r} is not a user of this world (1..{oracle.num_users})")
    mine = (log.user_id == user_id) & (log.time_s < now)
    engaged = np.flatnonzero(mine & log.labels.any(axis=1))
    history = [
        HistoryItem(int(log.post_id[r]), int(log.author_id[r]),
                    tuple(a for a, hit in zip(log.actions, log.labels[r]) if hit), int(log.surface[r]))
        for r in engaged
    ]
    following = frozenset(int(a) for a in oracle.following(user_id))
    return Query(int(user_id), now, history, following=following, seen_post_ids=frozenset(log.post_id[mine].tolist()))


def sample_feed(workdir: str | Path, user_id: int | None = None, num_candidates: int = 500, seed: int = 0) -> DemoFeed:
    workdir = Path(workdir)
    world_dir = read_run_data_dir(workdir)
    store, posts = _load_store(world_dir)
    ranker = Ranker.load(workdir, in_network_store=store)
    log = read_impressions(world_dir)
    oracle = WorldOracle(world_dir)
    rng = np.random.default_rng(seed)
    if user_id is None:
        user_id = int(rng.choice(np.unique(log.user_id[log.split == SPLITS.index("test")])))
    query = world_query(log, oracle, user_id, int(read_metadata(world_dir)["end_time_s"]))
    now, following = query.request_time_s, query.following
    candidates = []
    if not any(source.name == "out_of_network" for source in ranker.pipeline.sources):
        oldest = now - ranker.config.max_age_hours * 3600
        fresh = [p for p, (a, created) in posts.items() if oldest < created <= now and a not in following]
        picked = rng.choice(fresh, min(num_candidates, len(fresh)), replace=False)
        candidates = [Candidate(int(p), posts[p][0], posts[p][1], source="random_fresh") for p in picked]
    feed = ranker.rank(query, candidates)

    pre_scoring = {f.name for f in ranker.pipeline.filters}
    scored = [i.post_id for i in feed.items] + [d.post_id for d in feed.dropped if d.stage not in pre_scoring]
    scorer = WeightedScorer(load_scoring_config(ranker.config.weights_path), ranker.service.config.actions)
    truth = scorer(oracle.probabilities(user_id, np.array(scored, np.int64)))
    return DemoFeed(feed, len(query.history), dict(zip(scored, truth.tolist())))


def render_feed(demo: DemoFeed, top: int = TOP) -> str:
    feed = demo.feed
    actions = list(feed.items[0].action_probs) if feed.items else []
    shown = feed.items[:top]
    sources = {name: sum(item.source == name for item in shown) for name in sorted({i.source for i in shown})}
    lines = [
        f"user {feed.user_id}: {demo.history_len} engagements, {demo.num_candidates} candidates scored "
        f"(sources: {', '.join(f'{k} {v}' for k, v in demo.scored_by_source.items())}), "
        f"{len(feed.dropped)} dropped; top {top} by source: {', '.join(f'{k} {v}' for k, v in sources.items())}; "
        "top posts with P(action) (true score in brackets; scores under 0.001 are net-negative, "
        "squashed below every positive one but kept in order)",
        f"{'#':>2s} {'post':>6s} {'source':>14s} {'score':>9s} {'(true)':>11s} "
        + " ".join(f"{a[:6]:>6s}" for a in actions),
    ]
    for i, item in enumerate(feed.items[:top]):
        probs = " ".join(f"{p:6.3f}" for p in item.action_probs.values())
        head = f"{i + 1:2d} {item.post_id:6d} {item.source:>14s} {item.final_score:9.3g}"
        lines.append(f"{head} ({demo.true_score[item.post_id]:9.3g}) {probs}")
    value = demo.value_at(top)
    lines.append(
        f"mean true score of the top {top}: feed {value['model']:.3f}, best possible {value['oracle']:.3f}, "
        f"random {value['random']:.3f}; request took {feed.timings_ms['total']:.0f} ms"
    )
    return "\n".join(lines)

"""The seeded synthetic world: entities, impressions, labels and the truth.

An impression is a post shown to a user on a surface at a time: in-network
(from a followed author, mostly on the following tab) or out-of-network
(topic-targeted and popularity-weighted, like a retrieval system would). Each
impression gets the ground-truth probability of every action, and its labels
are drawn from them. Impressions are split train / valid / test by time.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from phoenix.config import WorldConfig
from phoenix.data.dataset import ImpressionLog
from phoenix.data.world.entities import Authors, Posts, Users, make_authors, make_follows, make_posts, make_users
from phoenix.data.world.truth import action_probabilities, impression_traits

MAX_POST_AGE_S = 36 * 3600
FROM_FOLLOWS_RATE = 0.35  # an impression's chance of being a followed author's post (users who follow any)
TOPIC_DRAW_SHARES = (0.7, 0.3)  # out-of-network topics: drawn from the user's taste, or uniformly


@dataclasses.dataclass
class Impressions:
    """All impressions: what a model may see (the log, 1-based ids) and what only the world knows."""

    log: ImpressionLog  # ordered by (time, impression id), as a dataset reads back
    in_network: np.ndarray  # [N] bool
    truth: np.ndarray  # [N, A] float32, for evaluation only


@dataclasses.dataclass
class World:
    config: WorldConfig
    actions: tuple[str, ...]
    users: Users
    authors: Authors
    posts: Posts
    follows: np.ndarray  # [F, 2] (user index, author index)
    impressions: Impressions
    split_times_s: tuple[int, int]  # valid starts, test starts


def _sample_by_weight(cum_by_group: dict, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each row pick an index from its group's pool, proportionally to weight."""
    out = np.empty(group.size, np.int64)
    for g, (pool, cum) in cum_by_group.items():
        rows = np.flatnonzero(group == g)
        if rows.size:
            out[rows] = pool[np.searchsorted(cum, rng.random(rows.size) * cum[-1], side="right")]
    return out


def topic_draw_rates(users: Users) -> np.ndarray:  # [U, T], rows sum to 1
    """How often each user's out-of-network impressions target each topic."""
    t = users.preference.shape[1]
    taste, uniform = TOPIC_DRAW_SHARES
    return taste * users.preference / users.preference.sum(1, keepdims=True) + uniform / t


def _draw_impressions(config, users, authors, posts, follows, rng):
    u, t = config.num_users, config.num_topics
    counts = rng.poisson(config.impressions_per_user * users.activity / users.activity.mean())
    owner = np.repeat(np.arange(u), np.maximum(counts, 4))  # [N]
    n = owner.size

    # In-network: a followed author's post; out-of-network: a topic-targeted popular post.
    follow_start = np.searchsorted(follows[:, 0], np.arange(u))
    follow_count = np.bincount(follows[:, 0], minlength=u)
    from_follows = (rng.random(n) < FROM_FOLLOWS_RATE) & (follow_count[owner] > 0)
    pick = follow_start[owner] + (rng.random(n) * follow_count[owner]).astype(np.int64)
    followed_author = follows[np.minimum(pick, len(follows) - 1), 1]

    by_author = _group_indices(posts.author, config.num_authors)
    author_pools = {a: (pool, np.arange(1.0, pool.size + 1)) for a, pool in by_author.items()}
    post = np.empty(n, np.int64)
    rows = np.flatnonzero(from_follows)
    post[rows] = _sample_by_weight(author_pools, followed_author[rows], rng)

    cum_taste = np.cumsum(topic_draw_rates(users), axis=1)
    rows = np.flatnonzero(~from_follows)
    topic = np.minimum((rng.random(rows.size)[:, None] > cum_taste[owner[rows]]).sum(1), t - 1)
    by_topic = _group_indices(posts.topic, t)
    all_posts = np.arange(posts.topic.size)
    topic_pools = {}
    for k in range(t):  # a topic nobody posts in falls back to every post
        pool = by_topic.get(k, all_posts)
        topic_pools[k] = (pool, np.cumsum(posts.popularity[pool]))
    post[rows] = _sample_by_weight(topic_pools, topic, rng)

    # A topic-targeted post by an author the user follows is in-network too.
    follow_keys = set(zip(follows[:, 0].tolist(), follows[:, 1].tolist()))
    author = posts.author[post]
    in_network = np.fromiter((k in follow_keys for k in zip(owner.tolist(), author.tolist())), bool, n)

    age = rng.uniform(0.5 * 3600, MAX_POST_AGE_S, n).astype(np.int64)
    time_s = posts.created_s[post] + age
    keep = (time_s >= 0) & (time_s < int(config.days * 86400))
    # Followed accounts' posts appear on the following tab, notifications and
    # profiles; the rest on For You, search and explore.
    surface = np.where(
        in_network,
        rng.choice([1, 3, 4], n, p=[0.6, 0.2, 0.2]),
        rng.choice([0, 2, 5], n, p=[0.75, 0.15, 0.1]),
    )
    return owner[keep], post[keep], time_s[keep], in_network[keep], surface[keep]


def _group_indices(keys: np.ndarray, num_groups: int) -> dict[int, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(num_groups + 1))
    return {g: order[bounds[g] : bounds[g + 1]] for g in range(num_groups) if bounds[g + 1] > bounds[g]}


def generate_world(config: WorldConfig, actions: tuple[str, ...]) -> World:
    """Draw a whole world from `config.seed`; the same seed gives the same world."""
    rng = np.random.default_rng(config.seed)
    authors = make_authors(config, rng)
    posts = make_posts(config, authors, rng)
    users = make_users(config, rng)
    follows = make_follows(config, users, authors, rng)
    owner, post, time_s, in_network, surface = _draw_impressions(config, users, authors, posts, follows, rng)

    order = np.lexsort((owner, time_s))
    owner, post, time_s, in_network, surface = (a[order] for a in (owner, post, time_s, in_network, surface))
    author = posts.author[post]
    traits = impression_traits(users, authors, posts, owner, post, in_network, surface)
    truth = action_probabilities(traits, actions)  # [N, A]
    labels = (rng.random(truth.shape) < truth).astype(np.int8)  # [N, A]

    horizon = int(config.days * 86400)
    valid_start = int(horizon * (1 - config.valid_fraction - config.test_fraction))
    test_start = int(horizon * (1 - config.test_fraction))
    split = np.searchsorted(np.array([valid_start, test_start]), time_s, side="right")
    log = ImpressionLog(
        actions=tuple(actions),
        impression_id=np.arange(1, owner.size + 1),
        user_id=owner + 1,
        post_id=post + 1,
        author_id=author + 1,
        surface=surface.astype(np.int64),
        time_s=time_s,
        labels=labels,
        split=split.astype(np.int8),
    )
    impressions = Impressions(log, in_network, truth)
    return World(config, tuple(actions), users, authors, posts, follows, impressions, (valid_start, test_start))

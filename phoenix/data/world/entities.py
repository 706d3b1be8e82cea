"""Users, authors, posts and the follow graph of the synthetic world.

Everything a model could in principle learn from ids is drawn here: topics,
user tastes and aversions, author quality and toxicity, media mix, and who
follows whom. Hidden attributes stay in these arrays (and in `truth/` on disk);
the training data only ever shows ids, surfaces and actions.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from phoenix.config import WorldConfig

# How a post departs from its author (`make_posts`): the chance of a topic drawn uniformly
# instead of the author's; the post's quality as shares of the author's and of a Beta draw
# of its own; the chance of keeping the author's media type (else one drawn uniformly).
# The ceiling (`phoenix.data.world.ceiling`) averages over the same draws.
OFF_TOPIC_RATE = 0.05
QUALITY_SHARES = (0.85, 0.15)  # author, post's own
OWN_QUALITY_BETA = (2.0, 2.0)
AUTHOR_MEDIA_RATE = 0.97
NUM_MEDIA = 3  # text, photo, video


@dataclasses.dataclass
class Authors:
    topic: np.ndarray  # [N] main topic
    quality: np.ndarray  # [N] in (0, 1)
    toxicity: np.ndarray  # [N] in (0, 1), drives block / mute / report
    media: np.ndarray  # [N] creator type: 0 text, 1 photo, 2 video
    popularity: np.ndarray  # [N] > 0, drives follows and exposure


@dataclasses.dataclass
class Posts:
    author: np.ndarray  # [P] author index
    topic: np.ndarray  # [P]
    quality: np.ndarray  # [P] in (0, 1)
    is_video: np.ndarray  # [P] bool
    has_photo: np.ndarray  # [P] bool
    created_s: np.ndarray  # [P] seconds since the world's start (may be < 0)
    popularity: np.ndarray  # [P] > 0, Zipf-like exposure weight


@dataclasses.dataclass
class Users:
    preference: np.ndarray  # [U, T] in [0, 1], max 1 per user
    aversion: np.ndarray  # [U, T] in [0, 1], zero on liked topics
    toxicity_sensitivity: np.ndarray  # [U] in (0, 1)
    engagement_bias: np.ndarray  # [U] logit offset: some users engage more
    activity: np.ndarray  # [U] > 0, relative number of impressions


def make_authors(config: WorldConfig, rng: np.random.Generator) -> Authors:
    n = config.num_authors
    return Authors(
        topic=rng.integers(0, config.num_topics, n),
        quality=rng.beta(2.0, 2.0, n),
        toxicity=rng.beta(1.0, 6.0, n),
        media=rng.choice(NUM_MEDIA, n, p=[0.45, 0.3, 0.25]),
        popularity=rng.lognormal(0.0, 1.0, n),
    )


def post_quality(author_quality: np.ndarray, own: np.ndarray) -> np.ndarray:
    """A post's quality from its author's and its own draw, both in (0, 1)."""
    return np.clip(QUALITY_SHARES[0] * author_quality + QUALITY_SHARES[1] * own, 0.0, 1.0)


def media_flags(media: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is_video, has_photo) of media types 0 text, 1 photo, 2 video."""
    return media == 2, media == 1


def make_posts(config: WorldConfig, authors: Authors, rng: np.random.Generator) -> Posts:
    p, n = config.num_posts, config.num_authors
    # Every author posts at least once; the rest follow a lognormal posting rate.
    rate = rng.lognormal(0.0, 0.8, n)
    author = np.concatenate([np.arange(n), rng.choice(n, p - n, p=rate / rate.sum())])
    rng.shuffle(author)
    # Posts mostly look like their author: topic, media and quality are the
    # author's with a little per-post variation, so a brand-new post is
    # predictable from its author (as on a real network).
    off_topic = rng.random(p) < OFF_TOPIC_RATE
    topic = np.where(off_topic, rng.integers(0, config.num_topics, p), authors.topic[author])
    quality = post_quality(authors.quality[author], rng.beta(*OWN_QUALITY_BETA, p))
    media = np.where(rng.random(p) < AUTHOR_MEDIA_RATE, authors.media[author], rng.choice(NUM_MEDIA, p))
    is_video, has_photo = media_flags(media)
    created_s = rng.uniform(-1.5 * 86400, config.days * 86400, p).astype(np.int64)
    rank = rng.permutation(p) + 1
    popularity = rank.astype(np.float64) ** -0.8 * authors.popularity[author] ** 0.5
    return Posts(author, topic, quality, is_video, has_photo, created_s, popularity)


def make_users(config: WorldConfig, rng: np.random.Generator) -> Users:
    """Tastes cluster on a ring of topics; users dislike the far side of the ring.

    A user has a home topic, likes it and 1-3 topics near it, and is averse to
    the topic opposite it (and less so to that topic's neighbours): the
    aversion is predictable from taste, which positive engagement reveals far
    more often than negative feedback does.
    """
    u, t = config.num_users, config.num_topics
    home = rng.integers(0, t, u)
    preference = np.full((u, t), 0.03)
    aversion = np.zeros((u, t))
    for row in range(u):
        offsets = rng.permutation([-2, -1, 1, 2])[: rng.integers(1, 4)] if t > 4 else rng.permutation([1])
        liked = (home[row] + np.r_[0, offsets]) % t
        weights = rng.gamma(1.0, 1.0, liked.size)
        preference[row, liked] = np.maximum(weights / weights.max(), 0.15)
        opposite = home[row] + t // 2
        for offset, strength in ((0, 0.8), (-1, 0.4), (1, 0.4)):
            topic = (opposite + offset) % t
            if topic not in liked:
                aversion[row, topic] = strength
    return Users(
        preference=preference,
        aversion=aversion,
        toxicity_sensitivity=rng.beta(5.0, 5.0, u),
        engagement_bias=rng.normal(0.0, 0.5, u),
        activity=rng.lognormal(0.0, 0.5, u),
    )


def make_follows(
    config: WorldConfig, users: Users, authors: Authors, rng: np.random.Generator
) -> np.ndarray:  # [F, 2] (user index, author index), unique pairs
    """Users follow authors of topics they like, popular and good ones first."""
    u = config.num_users
    counts = np.maximum(1, rng.poisson(config.follows_per_user, u))
    owners = np.repeat(np.arange(u), counts)  # [F]
    # Topic of each follow from the user's taste, then an author of that topic by appeal.
    taste = users.preference + 0.02
    cum_taste = np.cumsum(taste / taste.sum(1, keepdims=True), axis=1)  # [U, T]
    draw = rng.random(owners.size)[:, None]
    topic = np.minimum((draw > cum_taste[owners]).sum(1), config.num_topics - 1)  # [F]
    appeal = authors.popularity * (0.2 + authors.quality)
    followed = np.empty(owners.size, np.int64)
    for t in range(config.num_topics):
        pick = topic == t
        pool = np.flatnonzero(authors.topic == t)
        if pool.size == 0:
            pool = np.arange(config.num_authors)
        w = appeal[pool] / appeal[pool].sum()
        followed[pick] = rng.choice(pool, pick.sum(), p=w)
    return np.unique(np.stack([owners, followed], axis=1), axis=0)

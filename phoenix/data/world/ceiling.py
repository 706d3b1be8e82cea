"""The ceiling: the best a ranker of ids can do on a split of the synthetic world.

The oracle knows every post's own topic, quality and media. A ranker that sees only ids
learns a post from that post's training impressions; a post first shown after the training
period is known by its author alone, whatever the model. Posts live 36 hours, so nearly every
candidate of a world's validation and test splits is such a post.

The ceiling is the oracle's probability for a post with training impressions and, for any
other, its expectation over the post's own draws (`entities.make_posts`) given its author and
given that it was shown to this user: the quality (the author's share plus a Beta draw,
integrated by Gauss-Legendre quadrature), the media type (the author's, else uniform) and the
topic (the author's, else uniform, then weighed by how likely the world was to show a post of
that topic to this user: `generator.topic_draw_rates`, so an off-topic post shown out of
network more likely matches the user's taste). It still knows every user's and author's
hidden traits exactly, which a ranker can only estimate from their impressions, so it bounds
what is learnable from above.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from phoenix.data.dataset import SPLITS, ImpressionLog
from phoenix.data.world.entities import (
    AUTHOR_MEDIA_RATE,
    NUM_MEDIA,
    OFF_TOPIC_RATE,
    OWN_QUALITY_BETA,
    Authors,
    Posts,
    Users,
    media_flags,
    post_quality,
)
from phoenix.data.world.generator import FROM_FOLLOWS_RATE, topic_draw_rates
from phoenix.data.world.oracle import WorldOracle
from phoenix.data.world.truth import action_probabilities, impression_traits

# Gauss-Legendre nodes: the post's own share of its quality moves a logit by well under 1, over
# which the sigmoid is smooth; 4 nodes agree with 12 to float32 precision.
QUALITY_NODES = 4


def own_quality_nodes(num_nodes: int = QUALITY_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Nodes in (0, 1) and weights (summing to 1) integrating against the Beta draw of a post's own quality."""
    x, w = np.polynomial.legendre.leggauss(num_nodes)  # on [-1, 1]
    x, w = (x + 1) / 2, w / 2  # on [0, 1]
    a, b = OWN_QUALITY_BETA
    density = x ** (a - 1) * (1 - x) ** (b - 1)  # unnormalised Beta density at the nodes
    weights = w * density
    return x, weights / weights.sum()


def topic_posterior(
    users: Users,
    authors: Authors,
    posts: Posts,
    user: np.ndarray,  # [M] user index
    author: np.ndarray,  # [M] author index of an unseen post
    followed: np.ndarray,  # [M] bool: the user follows the author
    follow_counts: np.ndarray,  # [U] authors each user follows
) -> np.ndarray:  # [M, T], rows sum to 1
    """P(the unseen post's topic | its author, and that the world showed it to this user).

    An impression is a followed author's post (chance FROM_FOLLOWS_RATE, whatever its topic)
    or a post of a topic drawn for the user, picked by popularity within the topic.
    """
    num_topics = users.preference.shape[1]
    prior = OFF_TOPIC_RATE / num_topics + (1 - OFF_TOPIC_RATE) * (
        authors.topic[author][:, None] == np.arange(num_topics))  # [M, T]
    num_posts = np.bincount(posts.author, minlength=authors.topic.size)  # [N]
    mean_popularity = np.bincount(posts.author, posts.popularity, authors.topic.size) / np.maximum(num_posts, 1)  # [N]
    topic_popularity = np.bincount(posts.topic, posts.popularity, num_topics)  # [T]
    follows_any = follow_counts[user] > 0  # [M]
    # Shown as one of the followed authors' posts: one of the author's posts, one of the user's follows.
    via_follows = FROM_FOLLOWS_RATE * followed / np.maximum(follow_counts[user], 1) / num_posts[author]  # [M]
    # Shown as a post of a drawn topic: the draw's rate, the post's share of that topic's popularity.
    share = mean_popularity[author][:, None] / np.where(topic_popularity > 0, topic_popularity, np.inf)  # [M, T]
    via_topic = (1 - FROM_FOLLOWS_RATE * follows_any)[:, None] * topic_draw_rates(users)[user] * share  # [M, T]
    posterior = prior * (via_follows[:, None] + via_topic)  # [M, T]
    return posterior / posterior.sum(axis=1, keepdims=True)


def ceiling_probabilities(
    users: Users,
    authors: Authors,
    posts: Posts,
    user: np.ndarray,  # [N] user index (0-based)
    post: np.ndarray,  # [N] post index (0-based)
    followed: np.ndarray,  # [N] bool
    surface: np.ndarray,  # [N]
    follow_counts: np.ndarray,  # [U] authors each user follows
    known: np.ndarray,  # [N] bool: the post has training impressions
    actions: tuple[str, ...],
) -> np.ndarray:  # [N, A]
    """P(action) of the best ranker of ids: the truth for known posts, the author-given expectation for new ones."""
    out = np.empty((post.size, len(actions)), np.float32)  # [N, A]
    old = np.flatnonzero(known)
    out[old] = action_probabilities(
        impression_traits(users, authors, posts, user[old], post[old], followed[old], surface[old]), actions)
    new = np.flatnonzero(~known)
    if new.size == 0:
        return out
    m, author = new.size, posts.author[post[new]]  # [M]
    p_topics = topic_posterior(users, authors, posts, user[new], author, followed[new], follow_counts)  # [M, T]
    p_media = (1 - AUTHOR_MEDIA_RATE) / NUM_MEDIA + AUTHOR_MEDIA_RATE * (
        authors.media[author][:, None] == np.arange(NUM_MEDIA))  # [M, 3]
    quality_x, quality_w = own_quality_nodes()
    qualities = [post_quality(authors.quality[author], np.full(m, x)) for x in quality_x]  # Q x [M]
    # One stand-in post per new impression: its author's, of each topic in turn; its quality and
    # media are set per draw on the impression's traits.
    stand_ins = dataclasses.replace(posts, author=author, quality=qualities[0], is_video=np.zeros(m, bool),
                                    has_photo=np.zeros(m, bool))
    expected = np.zeros((m, len(actions)))  # [M, A]
    for topic in range(p_topics.shape[1]):
        stand_ins.topic = np.full(m, topic)
        traits = impression_traits(users, authors, stand_ins, user[new], np.arange(m), followed[new], surface[new])
        for media in range(NUM_MEDIA):
            is_video, has_photo = media_flags(np.full(m, media))
            for quality, w in zip(qualities, quality_w, strict=True):
                drawn = dataclasses.replace(traits, post_quality=quality, is_video=is_video, has_photo=has_photo)
                weight = p_topics[:, topic] * p_media[:, media] * w  # [M]
                expected += weight[:, None] * action_probabilities(drawn, actions)  # [M, A]
    out[new] = expected
    return out


def split_ceiling(oracle: WorldOracle, log: ImpressionLog, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The ceiling of one split of the world's log: (impression ids [N], probabilities [N, A]).

    A post is known when the training split shows it at least once.
    """
    rows = np.flatnonzero(log.split == SPLITS.index(split))
    known = np.isin(log.post_id[rows], log.post_id[log.split == SPLITS.index("train")])
    user, post = log.user_id[rows] - 1, log.post_id[rows] - 1
    pairs = zip(log.user_id[rows].tolist(), (oracle.posts.author[post] + 1).tolist())
    followed = np.fromiter((pair in oracle.follow_keys for pair in pairs), bool, rows.size)
    follow_counts = np.array([oracle.following(u).size for u in range(1, oracle.num_users + 1)])  # [U]
    probs = ceiling_probabilities(oracle.users, oracle.authors, oracle.posts, user, post, followed,
                                  log.surface[rows], follow_counts, known, log.actions)
    return log.impression_id[rows], probs

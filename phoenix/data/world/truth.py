"""Ground-truth probability of every action for an impression.

Two latent scores drive everything, and both are learnable from ids:

* appeal   = taste for the post's topic + post and author quality + follows
             + the user's own engagement bias;
* aversion = dislike of the post's topic, the author's toxicity scaled by the
             user's sensitivity, and low quality.

Positive actions rise with appeal (video views need a video, photo expands a
photo, follows an author not yet followed); negative actions (not interested,
block, mute, report) rise with aversion, reports mostly with toxicity. The
product surface shifts each action's base rate. Post age is deliberately not
an input: the model is never shown it, so the oracle must not use it either.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from phoenix.data.world.entities import Authors, Posts, Users

SURFACES: tuple[str, ...] = (
    "home_for_you",
    "home_following",
    "search",
    "profile",
    "notifications",
    "explore",
)


@dataclasses.dataclass(frozen=True)
class ActionLaw:
    """logit = base + appeal_slope·appeal + aversion_slope·aversion + extras."""

    base: float
    appeal_slope: float = 0.0
    aversion_slope: float = 0.0
    toxicity_slope: float = 0.0
    quality_slope: float = 0.0


ACTION_LAWS: dict[str, ActionLaw] = {
    "favorite": ActionLaw(-3.3, appeal_slope=1.2, aversion_slope=-0.8),
    "reply": ActionLaw(-5.0, appeal_slope=1.1, toxicity_slope=0.8),
    "repost": ActionLaw(-4.6, appeal_slope=1.2, quality_slope=1.0),
    "quote": ActionLaw(-5.6, appeal_slope=1.0, toxicity_slope=0.6),
    "click": ActionLaw(-3.2, appeal_slope=0.9),
    "profile_click": ActionLaw(-4.7, appeal_slope=0.8, quality_slope=1.0),
    "video_view": ActionLaw(-2.0, appeal_slope=1.0),
    "photo_expand": ActionLaw(-2.4, appeal_slope=0.9),
    "share": ActionLaw(-5.5, appeal_slope=1.2, quality_slope=1.5),
    "dwell": ActionLaw(-2.4, appeal_slope=0.8, quality_slope=1.5),
    "follow_author": ActionLaw(-6.0, appeal_slope=1.1, quality_slope=1.5),
    "not_interested": ActionLaw(-4.6, appeal_slope=-0.6, aversion_slope=1.6),
    "block_author": ActionLaw(-6.6, aversion_slope=0.6, toxicity_slope=3.5),
    "mute_author": ActionLaw(-5.9, aversion_slope=1.2, toxicity_slope=2.0),
    "report": ActionLaw(-7.6, aversion_slope=0.5, toxicity_slope=4.5),
}

# Per-surface logit shifts: following-tab viewers like more, search users click more,
# notifications get replies, profile visitors follow.
SURFACE_SHIFTS: dict[str, dict[str, float]] = {
    "home_following": {"favorite": 0.3, "reply": 0.3, "not_interested": -0.4},
    "search": {"click": 0.6, "dwell": 0.4, "favorite": -0.2},
    "profile": {"follow_author": 1.0, "profile_click": -1.0},
    "notifications": {"reply": 0.8, "quote": 0.3},
    "explore": {"video_view": 0.4, "not_interested": 0.3},
}


@dataclasses.dataclass
class ImpressionTraits:
    """Per-impression latent inputs to the action laws (all [N])."""

    topic_preference: np.ndarray
    topic_aversion: np.ndarray
    post_quality: np.ndarray
    author_quality: np.ndarray
    toxicity: np.ndarray  # author toxicity x user sensitivity
    followed: np.ndarray  # bool
    engagement_bias: np.ndarray
    is_video: np.ndarray  # bool
    has_photo: np.ndarray  # bool
    surface: np.ndarray  # int


def impression_traits(
    users: Users,
    authors: Authors,
    posts: Posts,
    user: np.ndarray,  # [N] user index
    post: np.ndarray,  # [N] post index
    followed: np.ndarray,  # [N] bool
    surface: np.ndarray,  # [N]
) -> ImpressionTraits:
    """Gather the latent inputs of N (user, post, surface) impressions (0-based indices)."""
    author = posts.author[post]
    topic = posts.topic[post]
    return ImpressionTraits(
        topic_preference=users.preference[user, topic],
        topic_aversion=users.aversion[user, topic],
        post_quality=posts.quality[post],
        author_quality=authors.quality[author],
        toxicity=2.0 * authors.toxicity[author] * users.toxicity_sensitivity[user],
        followed=followed,
        engagement_bias=users.engagement_bias[user],
        is_video=posts.is_video[post],
        has_photo=posts.has_photo[post],
        surface=surface,
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def action_probabilities(traits: ImpressionTraits, actions: tuple[str, ...]) -> np.ndarray:
    """P(action) for every impression: [N, A] float32 in (0, 1)."""
    unknown = [a for a in actions if a not in ACTION_LAWS]
    if unknown:
        raise ValueError(f"model.actions: the synthetic world has no law for {unknown}")
    quality = traits.post_quality - 0.5
    appeal = (
        3.0 * traits.topic_preference
        + 1.5 * quality
        + 1.0 * (traits.author_quality - 0.5)
        + 0.5 * traits.followed
        + traits.engagement_bias
        - 2.2
    )
    aversion = 2.5 * traits.topic_aversion + 1.5 * traits.toxicity - 1.5 * quality - 0.3 * traits.followed
    columns = []
    for name in actions:
        law = ACTION_LAWS[name]
        logit = (
            law.base
            + law.appeal_slope * appeal
            + law.aversion_slope * aversion
            + law.toxicity_slope * traits.toxicity
            + law.quality_slope * quality
        )
        for surface_index, surface in enumerate(SURFACES):
            shift = SURFACE_SHIFTS.get(surface, {}).get(name, 0.0)
            logit = logit + shift * (traits.surface == surface_index)
        p = _sigmoid(logit)
        if name == "video_view":
            p = np.where(traits.is_video, p, 0.002)
        elif name == "photo_expand":
            p = np.where(traits.has_photo, p, 0.002)
        elif name == "follow_author":
            p = np.where(traits.followed, 0.0005, p)
        columns.append(p)
    return np.stack(columns, axis=1).astype(np.float32)  # [N, A]

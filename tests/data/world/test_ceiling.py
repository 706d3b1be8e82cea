import dataclasses

import numpy as np
import pytest

from phoenix.config import DEFAULT_ACTIONS, WorldConfig
from phoenix.data.dataset import read_impressions
from phoenix.data.world.ceiling import ceiling_probabilities, own_quality_nodes, split_ceiling
from phoenix.data.world.generator import generate_world
from phoenix.data.world.io import read_truth, write_world
from phoenix.data.world.oracle import WorldOracle
from phoenix.evaluation.metrics import roc_auc

WORLD = WorldConfig(num_users=800, num_authors=120, num_posts=2500, num_topics=8, impressions_per_user=60)


@pytest.fixture(scope="module")
def world():
    return generate_world(WORLD, DEFAULT_ACTIONS)


def _inputs(world, split: int):
    imp, log = world.impressions, world.impressions.log
    rows = np.flatnonzero(log.split == split)
    follow_counts = np.bincount(world.follows[:, 0], minlength=WORLD.num_users)
    return dict(users=world.users, authors=world.authors, posts=world.posts, user=log.user_id[rows] - 1,
                post=log.post_id[rows] - 1, followed=imp.in_network[rows], surface=log.surface[rows],
                follow_counts=follow_counts), rows


def test_quadrature_integrates_the_own_quality_draw():
    x, w = own_quality_nodes()
    assert w.sum() == pytest.approx(1.0) and np.all((x > 0) & (x < 1))
    # Beta(2, 2): mean 1/2, second moment 3/10, third 1/5
    assert (w * x).sum() == pytest.approx(0.5) and (w * x**2).sum() == pytest.approx(0.3)
    assert (w * x**3).sum() == pytest.approx(0.2)


def test_known_posts_get_the_truth(world):
    inputs, rows = _inputs(world, 2)
    probs = ceiling_probabilities(**inputs, known=np.ones(rows.size, bool), actions=DEFAULT_ACTIONS)
    np.testing.assert_array_equal(probs, world.impressions.truth[rows])


def test_new_posts_are_read_by_their_author_alone(world):
    inputs, rows = _inputs(world, 2)
    new = np.zeros(rows.size, bool)
    new[:50] = True
    probs = ceiling_probabilities(**inputs, known=~new, actions=DEFAULT_ACTIONS)
    np.testing.assert_array_equal(probs[~new], world.impressions.truth[rows][~new])
    # Redraw every post's own quality and media: the new posts' ceiling does not move.
    rng = np.random.default_rng(5)
    posts = world.posts
    redrawn = dataclasses.replace(posts, quality=rng.random(posts.quality.size), is_video=~posts.is_video,
                                  has_photo=~posts.has_photo)
    again = ceiling_probabilities(**{**inputs, "posts": redrawn}, known=~new, actions=DEFAULT_ACTIONS)
    np.testing.assert_allclose(again[new], probs[new], rtol=1e-12)
    # Nor their own topics, but for each topic's share of the world's popularity that moves with them.
    topics = posts.topic.copy()
    topics[inputs["post"][new]] = (topics[inputs["post"][new]] + 4) % WORLD.num_topics
    again = ceiling_probabilities(**{**inputs, "posts": dataclasses.replace(posts, topic=topics)}, known=~new,
                                  actions=DEFAULT_ACTIONS)
    own_topic_effect = np.abs(again[new] - probs[new]).max()
    # ... while their authors' traits do move it.
    authors = dataclasses.replace(world.authors, topic=(world.authors.topic + 4) % WORLD.num_topics)
    moved = ceiling_probabilities(**{**inputs, "authors": authors}, known=~new, actions=DEFAULT_ACTIONS)
    assert np.abs(moved[new] - probs[new]).max() > max(0.05, 10 * own_topic_effect)


def test_ceiling_of_a_split_sits_below_the_oracle(world, tmp_path):
    write_world(world, tmp_path)
    log = read_impressions(tmp_path)
    ids, probs = split_ceiling(WorldOracle(tmp_path), log, "test")
    truth_ids, truth = read_truth(tmp_path, "test", DEFAULT_ACTIONS)
    np.testing.assert_array_equal(ids, truth_ids)
    known = np.isin(log.post_id[log.split == 2], log.post_id[log.split == 0])
    assert known.mean() < 0.2  # posts live 36 hours: the test split's are mostly new
    # The new posts' ceiling is the truth's expectation given the author: equal on average.
    np.testing.assert_allclose(probs[~known].mean(axis=0), truth[~known].mean(axis=0), rtol=0.04)
    labels = log.labels[log.split == 2]
    heads = [a for a in range(len(DEFAULT_ACTIONS)) if 0 < labels[:, a].sum()]
    oracle = np.mean([roc_auc(labels[:, a], truth[:, a]) for a in heads])
    ceiling = np.mean([roc_auc(labels[:, a], probs[:, a]) for a in heads])
    assert oracle - 0.03 < ceiling < oracle - 0.002

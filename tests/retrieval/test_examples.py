import numpy as np
import pytest

from phoenix.data.dataset import SPLITS, read_impressions
from phoenix.retrieval.examples import pack_retrieval_examples, positive_mask, retrieval_queries

POSITIVES = ("favorite", "reply", "repost", "quote", "share")


@pytest.fixture(scope="module")
def log(micro_world):
    return read_impressions(micro_world)


def test_every_training_positive_is_a_target_exactly_once_and_only_positives(log):
    examples = pack_retrieval_examples(log, "train", 16, POSITIVES)
    positive = positive_mask(log, POSITIVES)
    train_rows = positive & (log.split == 0)
    want = sorted(zip(log.user_id[train_rows].tolist(), log.post_id[train_rows].tolist()))
    users = np.repeat(examples.history.user_id[:, None], 16, axis=1)[examples.target_mask]
    posts = examples.history.history_post_id[examples.target_mask]
    assert sorted(zip(users.tolist(), posts.tolist())) == want
    # Log-frequency correction: exp(logq) is each target's share of all targets.
    shares = np.exp(examples.target_logq[examples.target_mask])
    counts = {p: c for p, c in zip(*np.unique(posts, return_counts=True))}
    np.testing.assert_allclose(shares, [counts[p] / posts.size for p in posts], rtol=1e-5)


def test_windows_hold_only_the_split_and_earlier_in_time_order(log):
    examples = pack_retrieval_examples(log, "train", 16, POSITIVES)
    valid_posts = set(log.post_id[(log.split > 0)].tolist()) - set(log.post_id[log.split == 0].tolist())
    assert not set(examples.history.history_post_id.ravel().tolist()) & valid_posts
    lengths = (examples.history.history_post_id != 0).sum(axis=1)
    assert examples.target_mask[np.arange(16)[None, :] >= lengths[:, None]].sum() == 0  # no target in padding


def test_queries_exclude_seen_posts_and_use_only_earlier_history(log):
    queries = retrieval_queries(log, "test", 16, POSITIVES)
    test = SPLITS.index("test")
    for user, seen, relevant, history in zip(
        queries.history.user_id, queries.seen, queries.relevant, queries.history.history_post_id
    ):
        before = (log.user_id == user) & (log.split < test)
        assert set(seen.tolist()) == set(log.post_id[before].tolist())
        assert relevant.size and not np.isin(relevant, seen).any()
        assert np.isin(history[history != 0], log.post_id[before]).all()


def test_unknown_positive_action_is_named(log):
    with pytest.raises(ValueError, match="retrieval.positive_actions"):
        pack_retrieval_examples(log, "train", 16, ("favourite",))

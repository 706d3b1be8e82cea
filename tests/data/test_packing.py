import numpy as np

from phoenix.data.dataset import ImpressionLog
from phoenix.data.packing import batch_rows, pack_examples

ACTIONS = ("like", "click")


def hand_log() -> ImpressionLog:
    # user 1: events e1..e6 in time order; e1, e3, e5 engaged. splits: e1-e3 train, e4-e6 test.
    # user 2: one train engagement, one test impression.
    rows = [
        # id, user, post, time, labels, split
        (1, 1, 11, 10, (1, 0), 0),
        (2, 1, 12, 20, (0, 0), 0),
        (3, 1, 13, 30, (0, 1), 0),
        (4, 1, 14, 40, (0, 0), 2),
        (5, 1, 15, 50, (1, 1), 2),
        (6, 1, 16, 60, (0, 0), 2),
        (7, 2, 21, 15, (1, 0), 0),
        (8, 2, 22, 55, (0, 1), 2),
    ]
    col = lambda i: np.array([r[i] for r in rows])  # noqa: E731
    return ImpressionLog(
        ACTIONS, col(0), col(1), col(2), col(2) + 100, np.zeros(len(rows), np.int64), col(3),
        np.array([r[4] for r in rows], np.int8), col(5).astype(np.int8),
    )


def test_cutoffs_count_only_earlier_engagements():
    ex = pack_examples(hand_log(), "test", history_len=8, num_candidates=4)
    assert len(ex) == 2
    r = ex.request
    np.testing.assert_array_equal(r.user_id, [1, 2])
    # user 1 history: e1, e3, e5 (e5 is before the last test impression e6)
    np.testing.assert_array_equal(r.history_post_id[0, :4], [11, 13, 15, 0])
    np.testing.assert_array_equal(r.candidate_post_id[0], [14, 15, 16, 0])
    # e4 sees e1,e3; e5 sees e1,e3 but never its own engagement; e6 sees all three
    np.testing.assert_array_equal(r.candidate_cutoff[0, :3], [2, 2, 3])
    np.testing.assert_array_equal(ex.labels[0, 1], [1, 1])
    np.testing.assert_array_equal(r.history_actions[0, 2], [1, 1])
    np.testing.assert_array_equal(ex.impression_id[0], [4, 5, 6, 0])
    np.testing.assert_array_equal(r.candidate_cutoff[1, :1], [1])


def test_history_is_truncated_to_the_most_recent_items():
    ex = pack_examples(hand_log(), "test", history_len=1, num_candidates=2)
    # windows for user 1: (e4, e5) and (e6); user 2: (e8)
    assert len(ex) == 3
    np.testing.assert_array_equal(ex.request.history_post_id[:, 0], [13, 15, 21])
    np.testing.assert_array_equal(ex.request.candidate_cutoff[0], [1, 1])  # e3 is before e4 and e5


def test_no_candidate_sees_itself_or_later_items():
    ex = pack_examples(hand_log(), "train", history_len=8, num_candidates=8)
    r = ex.request
    for i in range(len(ex)):
        for j in np.flatnonzero(ex.impression_id[i]):
            visible = r.history_post_id[i, : r.candidate_cutoff[i, j]]
            assert r.candidate_post_id[i, j] not in visible


def test_batch_rows_are_a_function_of_seed_and_step():
    a = [batch_rows(10, 4, seed=3, step=s) for s in range(6)]
    b = [batch_rows(10, 4, seed=3, step=s) for s in range(6)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    # an epoch (2 batches of 4 from 10) has no repeats
    assert len(set(np.concatenate(a[:2]).tolist())) == 8
    assert not np.array_equal(batch_rows(10, 4, seed=4, step=0), a[0])

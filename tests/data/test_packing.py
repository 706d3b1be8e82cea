import dataclasses

import numpy as np
from helpers import MICRO_CONFIG

from phoenix.data.batch import RequestBatch, featurize
from phoenix.data.dataset import ImpressionLog, read_impressions
from phoenix.data.packing import batch_rows, pack_examples
from phoenix.model.ranker import build_ranker

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


def request_from_raw_log(log: ImpressionLog, row: int, history_len: int) -> RequestBatch:
    """One impression as its own request, built from the log directly: the user's last
    `history_len` engagements strictly before it, oldest first, and the impression as the candidate."""
    mine = np.flatnonzero(log.user_id == log.user_id[row])  # the log is in time order
    earlier = mine[mine < row]
    hist = earlier[log.labels[earlier].any(axis=1)][-history_len:]
    pad = history_len - hist.size

    def padded(values, dtype=np.int64):
        return np.concatenate([values, np.zeros((pad, *values.shape[1:]), dtype)]).astype(dtype)[None]

    return RequestBatch(
        user_id=log.user_id[[row]],
        history_post_id=padded(log.post_id[hist]),
        history_author_id=padded(log.author_id[hist]),
        history_actions=padded(log.labels[hist], np.int8),
        history_surface=padded(log.surface[hist]),
        candidate_post_id=log.post_id[[row]][None],
        candidate_author_id=log.author_id[[row]][None],
        candidate_surface=log.surface[[row]][None],
        candidate_cutoff=np.array([[hist.size]]),
    )


def test_every_candidate_scores_exactly_as_its_own_request_built_from_the_raw_log(micro_world):
    log = read_impressions(micro_world)
    config = dataclasses.replace(MICRO_CONFIG.model, history_len=6, num_candidates=4)  # most users pass 6
    model = build_ranker(config, seed=1)
    packed = pack_examples(log, "test", config.history_len, config.num_candidates)
    users = np.unique(packed.request.user_id)[:5]
    rows = np.flatnonzero(np.isin(packed.request.user_id, users))
    logits = np.asarray(model(featurize(packed.request.take(rows), config)))  # [n, C, A]
    row_of_impression = {int(i): r for r, i in enumerate(log.impression_id)}
    checked = late = 0
    for e, slot in zip(*np.nonzero(packed.impression_id[rows])):
        row = row_of_impression[int(packed.impression_id[rows][e, slot])]
        alone = request_from_raw_log(log, row, config.history_len)
        expected = np.asarray(model(featurize(alone, config)))[0, 0]
        np.testing.assert_allclose(logits[e, slot], expected, atol=2e-5)
        checked += 1
        late += int(alone.candidate_cutoff[0, 0] == config.history_len)
    assert checked == int(np.isin(log.user_id[log.split == 2], users).sum())  # every test impression of them
    assert late > checked // 2  # most of them see a full history that starts after the user's first items

import numpy as np

from phoenix.model.attention_mask import candidate_isolation_mask, token_positions


def test_mask_by_hand():
    # H = 3 (two real items), C = 2 (one real candidate with cutoff 1, one padding).
    history_valid = np.array([[True, True, False]])
    candidate_valid = np.array([[True, False]])
    cutoff = np.array([[1, 0]])
    mask = np.asarray(candidate_isolation_mask(history_valid, candidate_valid, cutoff))[0].astype(int)
    expected = np.array(
        [
            # u h0 h1 h2 c0 c1
            [1, 0, 0, 0, 0, 0],  # user
            [1, 1, 0, 0, 0, 0],  # h0
            [1, 1, 1, 0, 0, 0],  # h1
            [1, 0, 0, 0, 0, 0],  # h2 (padding) sees the user only
            [1, 1, 0, 0, 1, 0],  # c0: user, h0 (< cutoff 1), itself
            [1, 0, 0, 0, 0, 1],  # c1
        ]
    )
    np.testing.assert_array_equal(mask, expected)


def test_candidates_never_see_each_other_and_positions_follow_cutoffs():
    history_valid = np.arange(6)[None] < np.array([[6], [2]])
    cutoff = np.array([[6, 0, 3, 6], [2, 1, 0, 2]])
    mask = np.asarray(candidate_isolation_mask(history_valid, np.ones((2, 4), bool), cutoff))
    cand = mask[:, 7:, 7:]
    np.testing.assert_array_equal(cand, np.broadcast_to(np.eye(4, dtype=bool), cand.shape))
    assert not mask[:, :7, 7:].any()  # user and history never see candidates
    positions = np.asarray(token_positions(6, cutoff))
    np.testing.assert_array_equal(positions[:, :7], np.broadcast_to(np.arange(7), (2, 7)))
    np.testing.assert_array_equal(positions[:, 7:], cutoff + 1)

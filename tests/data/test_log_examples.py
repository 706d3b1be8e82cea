"""Phoenix's packed windows on a log: every position trained once, no target in its own input."""

from __future__ import annotations

import dataclasses

import numpy as np
from helpers import SMALL_MODEL, log_from_sequences

from phoenix.data.log_examples import (
    HashTables,
    batch_sizes,
    epoch_batches,
    evaluation_batches,
    num_batches,
    size_bucket,
    training_batch,
    training_windows,
)
from phoenix.data.protocol import split_next_item

H = SMALL_MODEL.history_len  # 12: windows of 12 advancing by 6
SEQUENCES = {1: list(range(1, 31)), 2: [40, 41, 42, 43], 3: [50, 51]}


def _split():
    return split_next_item(log_from_sequences(SEQUENCES, 80), negatives=10)


def test_windows_train_every_training_position_exactly_once():
    split = _split()
    windows = training_windows(split, H)
    for user in (1, 2, 3):
        mine = np.flatnonzero(windows.user == user)
        trained = []
        for w in mine:
            start = windows.start[w] - split.sequences.offsets[user - 1]
            trained += list(range(start + windows.first[w], start + windows.length[w]))
        assert sorted(trained) == list(range(split.train_len[user - 1]))
        assert (windows.length[mine] <= H).all()
    # User 1 trains 28 items: windows at 0, 6, 12 and 18 (the last one reaches item 28).
    assert windows.length[windows.user == 1].tolist() == [12, 12, 12, 10]
    sizes = np.arange(1, 200)
    buckets = size_bucket(sizes, 128)
    capped = size_bucket(np.array([1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 100]), 12)
    assert capped.tolist() == [2, 2, 3, 4, 6, 8, 8, 12, 12, 12, 12]
    assert ((buckets >= np.minimum(sizes, 128)) & (buckets <= 128)).all()
    filled = np.minimum(sizes, 128) / buckets
    assert (filled[sizes >= 3] > 2 / 3).all() and (sizes[buckets == 128] > 96).all()
    assert sorted(set(buckets.tolist())) == [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128]


def test_training_batch_candidates_see_only_earlier_items_and_negatives_are_not_training_items():
    split = _split()
    tables = HashTables.build(split, SMALL_MODEL)
    windows = training_windows(split, H)
    sampler = split.training_negatives()
    rng = np.random.default_rng(0)
    chosen = np.flatnonzero(windows.user == 1)[:2]
    batch, labels = training_batch(split, tables, windows, chosen, 4, 2, sampler, rng)
    hb = int(windows.target_bucket[chosen].max())  # both windows train 12 and 6 targets: bucket 12
    assert hb == 12 and batch.candidates.post_hashes.shape == (4, 3 * hb, SMALL_MODEL.num_hashes)
    history_items = split.sequences.item[windows.start[chosen[1]] + np.arange(12)]  # window 2: items 7..18
    np.testing.assert_array_equal(batch.prefix.history_post_hashes[1], tables.item[history_items])
    # Positives: candidate j is history item j with cutoff j, i.e. it sees items 0..j-1 only.
    first = int(windows.first[chosen[1]])
    for j in range(first, 12):
        np.testing.assert_array_equal(batch.candidates.post_hashes[1, j - first], tables.item[history_items[j]])
        assert batch.candidates.cutoff[1, j - first] == j
    positive_rows = windows.start[chosen[1]] + np.arange(first, 12)
    np.testing.assert_array_equal(labels[1, : 12 - first], split.sequences.actions[positive_rows])
    assert (labels[:, hb:] == 0).all()  # negatives carry no action
    click = labels[..., 4]
    assert click[0, :12].all() and click[1, : 12 - first].all() and not click[1, 12 - first : hb].any()
    # Negatives (columns hb:) are items user 1 never trained on; padding rows have no candidates.
    hashes_of_train = {tuple(tables.item[i]) for i in range(1, 29)}
    for cand in batch.candidates.post_hashes[:2, hb:].reshape(-1, SMALL_MODEL.num_hashes):
        if cand[0] != 0:
            assert tuple(cand) not in hashes_of_train
    assert not batch.candidate_valid[2:].any() and not batch.history_valid[2:].any()


def test_epoch_batches_hold_one_bucket_each_and_cover_all_windows():
    split = _split()
    windows = training_windows(split, H)
    sizes = batch_sizes(windows, 2, H, by_tokens=False)
    batches = epoch_batches(windows, sizes, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(windows)))
    assert len(batches) == num_batches(windows, sizes)
    assert all(np.unique(windows.shape_key[b]).size == 1 for b in batches)
    # User 1's later windows train 6, 6 and 4 targets: smaller target buckets than its first window's 12.
    assert windows.target_bucket[windows.user == 1].tolist() == [12, 6, 6, 4]


def test_evaluation_history_ends_right_before_the_target():
    split = _split()
    for which, expected_last in (("valid", {1: 28, 2: 41}), ("test", {1: 29, 2: 42})):
        for rows, users, history_rows, cand, cutoff in evaluation_batches(split, which, H, 4):
            for i, r in enumerate(rows.tolist()):
                user = int(split.eval_users[r])
                assert users[i] == user
                items = split.sequences.item[history_rows[i][history_rows[i] >= 0]]
                assert items[-1] == expected_last[user] and items.size == min(H, split.history_len(which)[r])
                assert cand[i, 0] == split.candidates(which)[r, 0] and (cutoff[i] == items.size).all()
                assert cand[i, 0] not in items


def test_without_user_ids_every_user_token_is_padding_and_items_keep_their_hashes():
    split = _split()
    without_users = dataclasses.replace(SMALL_MODEL, user_ids=False)
    with_ids, without = HashTables.build(split, SMALL_MODEL), HashTables.build(split, without_users)
    assert (without.user == 0).all() and (with_ids.user[1:] != 0).all()  # 0: the padding row, a zero embedding
    np.testing.assert_array_equal(without.item, with_ids.item)
    windows = training_windows(split, H)
    batch, _ = training_batch(split, without, windows, np.arange(2), 2, 1, split.training_negatives(),
                              np.random.default_rng(0))
    assert (batch.prefix.user_hashes == 0).all() and batch.history_valid.any()


def test_recent_targets_train_only_each_users_last_positions_with_earlier_context():
    split = _split()
    windows = training_windows(split, H, recent=10)
    for user in (1, 2, 3):
        n, offset = int(split.train_len[user - 1]), split.sequences.offsets[user - 1]
        mine = np.flatnonzero(windows.user == user)
        trained = []
        for w in mine:
            start = windows.start[w] - offset
            trained += list(range(start + windows.first[w], start + windows.length[w]))
        assert sorted(trained) == list(range(max(0, n - 10), n))  # the last 10 (or all), each once
    # User 1 (28 items, targets 18..27): windows at 12 (targets 18..23) and 18 (24..27), both with context.
    ones = np.flatnonzero(windows.user == 1)
    assert (windows.start[ones] - split.sequences.offsets[0]).tolist() == [12, 18]
    assert windows.first[ones].tolist() == [6, 6]


def test_a_short_tail_of_targets_shares_the_shape_of_its_history_bucket():
    # 67 training items, windows of 64 advancing by 32: the second window (35 items, history
    # bucket 48) trains 3 targets; its target bucket is a quarter of 48 (12), not 3.
    split = split_next_item(log_from_sequences({1: list(range(1, 70))}, 90), negatives=10)
    windows = training_windows(split, 64)
    assert windows.length.tolist() == [64, 35] and (windows.length - windows.first).tolist() == [64, 3]
    assert windows.target_bucket.tolist() == [64, 12]
    assert (windows.target_bucket >= windows.length - windows.first).all()


def test_batches_by_tokens_hold_as_many_positions_as_full_length_windows():
    # 40 users of 5 training items (bucket 6) and user 1's 28: windows of 16, 16 and 12 items.
    sequences = {1: list(range(1, 31))} | {u: [100 + 7 * u + i for i in range(7)] for u in range(2, 42)}
    split = split_next_item(log_from_sequences(sequences, 500), negatives=10)
    windows = training_windows(split, 16)
    sizes = batch_sizes(windows, 2, 16, by_tokens=True)
    assert windows.length[windows.user == 1].tolist() == [16, 16, 12]
    # 16 // 6 = 2 full windows' worth: 4 windows of 6 (24 positions) against 2 of 16 (32).
    assert sizes[windows.bucket == 6].tolist() == [4] * 40 and (sizes[windows.user == 1] == 2).all()
    batches = epoch_batches(windows, sizes, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(windows)))
    # 40 short windows by 4; user 1's three windows each in its own shape (16, 8 and 4 targets).
    assert len(batches) == num_batches(windows, sizes) == 10 + 3
    for b in batches:
        assert b.size <= sizes[b[0]] and (windows.bucket[b] * b.size <= 2 * 16).all()
    assert num_batches(windows, batch_sizes(windows, 2, 16, by_tokens=False)) == 20 + 3

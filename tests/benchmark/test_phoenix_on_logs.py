"""Phoenix's training pieces on logs: the listwise and catalogue losses by hand, the catalogue
sample, and dropout only while training."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import SMALL_MODEL, random_request

from phoenix.benchmark.phoenix_on_logs import catalogue_loss, catalogue_sample, listwise_loss
from phoenix.data.batch import featurize
from phoenix.model.dropout import without_dropout
from phoenix.model.ranker import build_ranker


def test_listwise_loss_matches_a_hand_computed_softmax():
    # Two positions (P=2), two groups (true item, one negative): layout [true_0, true_1, neg_0, neg_1].
    logits = jnp.array([[2.0, 0.0, 1.0, 3.0]])
    valid = jnp.array([[True, True, True, True]])
    expected = -(np.log(np.exp(2) / (np.exp(2) + np.exp(1))) + np.log(1 / (1 + np.exp(3)))) / 2
    assert float(listwise_loss(logits, valid, groups=2)) == pytest.approx(expected, rel=1e-6)
    # A padded position (invalid true item and negative) does not count; an invalid negative is ignored.
    valid = jnp.array([[True, False, False, False]])
    assert float(listwise_loss(logits, valid, groups=2)) == pytest.approx(0.0, abs=1e-6)


def test_dropout_acts_in_training_mode_only():
    config = SMALL_MODEL.__class__(**{**SMALL_MODEL.__dict__, "dropout_rate": 0.3})
    model = build_ranker(config, seed=0)
    batch = featurize(random_request(np.random.default_rng(0), config, batch=2, lengths=[5, 9]), config)
    first, second = np.asarray(model(batch)), np.asarray(model(batch))
    assert np.abs(first - second).max() > 1e-4  # a fresh dropout mask per call
    with without_dropout(model):
        cached, full = np.asarray(model(batch)), np.asarray(model.full_sequence(batch))
        np.testing.assert_allclose(cached, np.asarray(model(batch)), atol=0)
    np.testing.assert_allclose(cached, full, atol=1e-4)  # both paths agree without dropout
    after = np.asarray(model(batch))
    assert np.abs(after - cached).max() > 1e-4  # dropout is back on after the block


def test_catalogue_loss_is_the_softmax_of_the_match_term_with_the_true_item_masked():
    config = dataclasses.replace(SMALL_MODEL, sequence_match=True)
    model = build_ranker(config, seed=3)
    batch = featurize(random_request(np.random.default_rng(4), config, batch=2, candidates=3, lengths=[6, 2]), config)
    cache = model.encode_prefix(batch.prefix)
    positives, valid = batch.candidates, jnp.array([[True, True, False], [True, True, True]])
    others = featurize(random_request(np.random.default_rng(5), config, batch=1, candidates=5), config)
    catalogue = jnp.asarray(others.candidates.post_hashes[0])  # [5, K]
    action = 1
    # By hand: the match logit of the true item against each catalogue item's.
    queries = np.asarray(cache.match)[np.arange(2)[:, None], np.asarray(positives.cutoff), action]  # [B, P, K·E]
    target = np.einsum("bpn,bpn->bp", queries, np.asarray(model.encoder.post_embed(positives.post_hashes)))
    rest = np.einsum("bpn,sn->bps", queries, np.asarray(model.encoder.post_embed(catalogue)))
    nll = np.log(np.exp(target) + np.exp(rest).sum(-1)) - target  # [B, P]
    expected = nll[np.asarray(valid)].mean()
    loss, sigmoid = map(float, catalogue_loss(model, cache, positives, valid, catalogue, action))
    assert loss == pytest.approx(expected, rel=1e-5)
    # The sigmoid cross-entropy: the true item labelled 1, the mean over the catalogue items labelled 0.
    softplus = lambda x: np.logaddexp(0.0, x)  # noqa: E731
    bce = softplus(-target) + softplus(rest).mean(-1)  # [B, P]
    assert sigmoid == pytest.approx(bce[np.asarray(valid)].mean(), rel=1e-5)
    # A catalogue holding a true item scores it once, as the target: the duplicate is masked.
    with_duplicate = jnp.concatenate([catalogue, positives.post_hashes[1, :1]], axis=0)
    only_first = jnp.array([[False] * 3, [True, False, False]])
    duplicate_free = catalogue_loss(model, cache, positives, only_first, catalogue, action)
    duplicated = catalogue_loss(model, cache, positives, only_first, with_duplicate, action)
    np.testing.assert_allclose(np.asarray(duplicated), np.asarray(duplicate_free), rtol=1e-6)
    # A user's own items are not negatives: masking catalogue items 1 and 3 for request 0 gives
    # request 0 the softmax over the other three, and leaves request 1 as it was.
    user_items = jnp.array([[False, True, False, True, False], [False] * 5])
    keep = np.array([0, 2, 4])
    nll_0 = np.log(np.exp(target[0]) + np.exp(rest[0][:, keep]).sum(-1)) - target[0]
    expected = (nll_0[:2].sum() + nll[1].sum()) / 5  # request 0 has 2 valid positions, request 1 has 3
    loss, sigmoid = map(float, catalogue_loss(model, cache, positives, valid, catalogue, action, user_items))
    assert loss == pytest.approx(expected, rel=1e-5)
    bce_0 = softplus(-target[0]) + softplus(rest[0][:, keep]).mean(-1)
    assert sigmoid == pytest.approx((bce_0[:2].sum() + bce[1].sum()) / 5, rel=1e-5)


def test_catalogue_sample_is_the_whole_catalogue_or_distinct_uniform_items():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(catalogue_sample(10, 16, rng), np.arange(1, 11))
    rows = np.concatenate([catalogue_sample(10, 4, rng) for _ in range(200)])
    assert rows.min() >= 1 and rows.max() <= 10  # never the padding index 0
    assert all(np.unique(catalogue_sample(10, 4, rng)).size == 4 for _ in range(20))
    counts = np.bincount(rows, minlength=11)[1:]
    assert counts.min() > 40 and counts.max() < 120  # 800 draws over 10 items: about 80 each


def test_log_loss_weighs_every_position_alike_whatever_the_length_of_its_batchs_windows():
    import functools

    from helpers import log_from_sequences

    from phoenix.benchmark.phoenix_on_logs import log_loss_fn
    from phoenix.data.log_examples import HashTables, training_batch, training_windows
    from phoenix.data.protocol import split_next_item

    # User 1 trains 28 items in windows of 12; users 2 and 3 train 3 and 2 items: one window each.
    config = dataclasses.replace(SMALL_MODEL, sequence_match=True, dropout_rate=0.0)
    split = split_next_item(log_from_sequences({1: list(range(1, 31)), 2: [40, 41, 42, 43, 44], 3: [50, 51, 52, 53]},
                                               80), negatives=10)
    tables, windows = HashTables.build(split, config), training_windows(split, config.history_len)
    model = build_ranker(config, seed=0)
    catalogue = jnp.asarray(tables.item[np.arange(1, 60, 3)])  # [20, K] one sample for every batch

    def loss(chosen, mean_positions=None):  # by default each batch's own positions: a mean per batch
        batch, labels = training_batch(split, tables, windows, chosen, chosen.size, 0, split.training_negatives(),
                                       np.random.default_rng(0))
        mean_positions = mean_positions or int(targets[chosen].sum())
        fn = functools.partial(log_loss_fn, groups=1, action=1, listwise_weight=1.0, catalogue_weight=1.0,
                               catalogue_bce_weight=1.0, mean_positions=mean_positions)
        return float(fn(model, (batch, labels, None), catalogue, None))

    targets = windows.length - windows.first
    short, long = np.flatnonzero(windows.user > 1), np.flatnonzero(windows.user == 1)[:2]
    n_short, n_long = int(targets[short].sum()), int(targets[long].sum())
    assert (n_short, n_long) == (5, 18)
    # Two steps, one of short windows and one of long ones, weighed by positions: the same total as
    # one batch of all of them, where every position weighs 1 / (5 + 18).
    both = 2 * loss(np.concatenate([short, long]))
    mean = (n_short + n_long) / 2
    assert loss(short, mean) + loss(long, mean) == pytest.approx(both, rel=1e-5)
    # A mean per batch gives each of the 5 short positions the weight of 3.6 long ones: even with
    # the untrained model's similar losses at every position the totals differ (by 2%).
    assert abs(loss(short) + loss(long) - both) > 0.01 * both


@pytest.mark.slow  # trains a few epochs with every logs.toml option: about 30 s
def test_training_with_the_logs_toml_options_learns_and_keeps_the_averaged_state(tmp_path):
    import pyarrow.csv as pacsv

    from phoenix.benchmark.phoenix_on_logs import phoenix_scores, train_phoenix_on_log
    from phoenix.config import PhoenixConfig, replace
    from phoenix.data.interactions import load_interactions
    from phoenix.data.protocol import hit_and_ndcg, split_next_item
    from phoenix.data.synthetic_log import synthetic_interactions

    model = {**SMALL_MODEL.__dict__, "history_len": 16, "sequence_match": True, "dropout_rate": 0.1,
             "post_id_dropout": 0.0, "user_ids": False}
    logs = {"eval_negatives": 50, "train_negatives": 1, "catalogue_weight": 1.0, "catalogue_negatives": 64,
            "catalogue_excludes_user_items": True, "catalogue_bce_weight": 1.0,
            "train": {"num_epochs": 10, "patience": 10, "batch_size": 16, "learning_rate": 3e-3, "warmup_steps": 5,
                      "average_decay": 0.9}}
    config = replace(PhoenixConfig(), model=model, logs=logs)
    pacsv.write_csv(synthetic_interactions(150, 300, 3000, seed=1, num_topics=10), tmp_path / "log.csv")
    split = split_next_item(load_interactions(tmp_path / "log.csv", config.logs, config.model.actions), 50)
    ranker, tables, fit = train_phoenix_on_log(split, config, progress=False)
    assert (tables.user == 0).all() and len(fit.validations) == 10
    action = config.model.actions.index("click")
    valid = hit_and_ndcg(phoenix_scores(ranker, split, tables, "valid", action))["ndcg@10"]
    # The model ends holding the best epoch's averaged parameters: they score what validation saw.
    best = [r for r in fit.validations if r["step"] == fit.best_step]
    assert valid == pytest.approx(best[0]["valid_ndcg@10"], abs=1e-6)
    test = hit_and_ndcg(phoenix_scores(ranker, split, tables, "test", action))["ndcg@10"]
    assert test > 0.15  # chance is about 0.09 with 50 negatives; 0.200 measured (seeds 1, 2: 0.148, 0.148)

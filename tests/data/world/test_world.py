import numpy as np
import pytest

from phoenix.config import DEFAULT_ACTIONS, WorldConfig
from phoenix.data.dataset import DatasetError, read_impressions
from phoenix.data.world.generator import generate_world
from phoenix.data.world.io import read_truth, write_world
from phoenix.data.world.oracle import WorldOracle
from phoenix.evaluation.metrics import roc_auc
from phoenix.evaluation.popularity import popularity_probs

SMALL_WORLD = WorldConfig(num_users=1200, num_authors=150, num_posts=3000, num_topics=8, impressions_per_user=60)


@pytest.fixture(scope="module")
def world():
    return generate_world(SMALL_WORLD, DEFAULT_ACTIONS)


def test_same_seed_same_world_other_seed_other_world(world):
    again = generate_world(SMALL_WORLD, DEFAULT_ACTIONS)
    np.testing.assert_array_equal(again.impressions.log.labels, world.impressions.log.labels)
    np.testing.assert_array_equal(again.impressions.log.post_id, world.impressions.log.post_id)
    other = generate_world(WorldConfig(**{**SMALL_WORLD.__dict__, "seed": 1}), DEFAULT_ACTIONS)
    assert other.impressions.log.post_id.size != world.impressions.log.post_id.size or not np.array_equal(
        other.impressions.log.post_id, world.impressions.log.post_id
    )


def test_realistic_task_oracle_auc_rates_and_baseline(world):
    imp = world.impressions
    oracle = [roc_auc(imp.log.labels[:, a], imp.truth[:, a]) for a in range(15)]
    assert 0.70 <= np.mean(oracle) <= 0.90
    assert min(oracle) > 0.6
    rates = imp.log.labels.mean(axis=0)
    fav, report = rates[DEFAULT_ACTIONS.index("favorite")], rates[DEFAULT_ACTIONS.index("report")]
    assert 0.03 < fav < 0.3 and 0 < report < fav / 10  # likes common, reports rare
    assert len(np.unique(np.round(rates, 3))) >= 12  # rates differ by head
    # labels are drawn from the truth: observed rates match mean probabilities
    np.testing.assert_allclose(rates, imp.truth.mean(axis=0), atol=0.01)
    test = np.flatnonzero(imp.log.split == 2)
    baseline = popularity_probs(world.impressions.log, np.flatnonzero(imp.log.split == 0), test)
    base_auc = np.nanmean([roc_auc(imp.log.labels[test, a], baseline[:, a]) for a in range(15)])
    test_oracle = np.nanmean([roc_auc(imp.log.labels[test, a], imp.truth[test, a]) for a in range(15)])
    assert base_auc < test_oracle - 0.08


def test_negative_actions_follow_aversion_and_toxicity(world):
    imp = world.impressions
    user, post = imp.log.user_id - 1, imp.log.post_id - 1
    averse = world.users.aversion[user, world.posts.topic[post]] > 0.3
    ni = DEFAULT_ACTIONS.index("not_interested")
    assert imp.truth[averse, ni].mean() > 3 * imp.truth[~averse, ni].mean()
    assert imp.log.labels[averse, ni].mean() > 2 * imp.log.labels[~averse, ni].mean()
    toxic = world.authors.toxicity[imp.log.author_id - 1] > 0.3
    rep = DEFAULT_ACTIONS.index("report")
    assert imp.truth[toxic, rep].mean() > 3 * imp.truth[~toxic, rep].mean()
    video = DEFAULT_ACTIONS.index("video_view")
    assert imp.log.labels[~world.posts.is_video[post], video].mean() < 0.01


def test_splits_are_ordered_in_time(world):
    imp = world.impressions
    assert imp.log.time_s[imp.log.split == 0].max() < imp.log.time_s[imp.log.split == 1].min()
    assert imp.log.time_s[imp.log.split == 1].max() < imp.log.time_s[imp.log.split == 2].min()
    assert np.all(np.diff(imp.log.time_s) >= 0)


def test_parquet_round_trip_and_oracle(world, tmp_path):
    write_world(world, tmp_path)
    log = read_impressions(tmp_path)
    np.testing.assert_array_equal(log.labels, world.impressions.log.labels)
    np.testing.assert_array_equal(log.post_id, world.impressions.log.post_id)
    ids, probs = read_truth(tmp_path, "test", DEFAULT_ACTIONS)
    test = world.impressions.log.split == 2
    np.testing.assert_array_equal(ids, world.impressions.log.impression_id[test])
    np.testing.assert_allclose(probs, world.impressions.truth[test])
    # The oracle reproduces the truth of shown impressions from the hidden attributes.
    oracle = WorldOracle(tmp_path)
    rows = np.flatnonzero(world.impressions.log.user_id == 7)[:20]
    got = oracle.probabilities(7, world.impressions.log.post_id[rows], world.impressions.log.surface[rows])
    np.testing.assert_allclose(got, world.impressions.truth[rows], rtol=1e-5)


def test_hosts_read_disjoint_user_slices_that_cover_the_world(world, tmp_path):
    write_world(world, tmp_path)
    whole = read_impressions(tmp_path)
    shards = [read_impressions(tmp_path, user_shard=(i, 3)) for i in range(3)]
    users = [set(s.user_id.tolist()) for s in shards]
    assert all(u for u in users) and not (users[0] & users[1] or users[0] & users[2] or users[1] & users[2])
    assert sum(s.user_id.size for s in shards) == whole.user_id.size
    for i, shard in enumerate(shards):  # every impression of a host's users, in the same time order
        mine = whole.user_id % 3 == i
        np.testing.assert_array_equal(shard.impression_id, whole.impression_id[mine])
    with pytest.raises(ValueError, match="user_shard: index 3 is not in"):
        read_impressions(tmp_path, user_shard=(3, 3))


def test_missing_and_corrupt_files_are_named(world, tmp_path):
    with pytest.raises(DatasetError, match="dataset.json"):
        read_impressions(tmp_path)
    write_world(world, tmp_path)
    valid = tmp_path / "impressions" / "valid.parquet"
    valid.write_bytes(b"not parquet at all")
    with pytest.raises(DatasetError, match="valid.parquet: unreadable or corrupt"):
        read_impressions(tmp_path)
    valid.unlink()
    with pytest.raises(DatasetError, match="valid.parquet: file not found"):
        read_impressions(tmp_path)

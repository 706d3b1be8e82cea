import numpy as np
import pytest

from phoenix.retrieval.corpus_index import CorpusIndex, CorpusIndexError


def random_index(n=3000, d=16, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, d)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    post_ids = rng.permutation(n * 3)[:n].astype(np.int64) + 1
    return CorpusIndex(post_ids, rng.integers(1, 40, n), rng.integers(0, 10_000, n), vectors), rng


def brute_force(index, user, k, excluded_rows=(), lo=None, hi=None):
    scores = index.vectors @ user
    ok = np.ones(len(index), bool)
    ok[list(excluded_rows)] = False
    if lo is not None:
        ok &= index.created_s > lo
    if hi is not None:
        ok &= index.created_s <= hi
    rows = np.flatnonzero(ok)
    top = rows[np.argsort(-scores[rows], kind="stable")[:k]]
    return index.post_ids[top], scores[top]


@pytest.mark.parametrize("block_scores", [256, 3000, 1 << 22])  # chunks of 256, 1024 and the whole corpus
def test_top_k_equals_numpy_brute_force_with_exclusions_and_time_window(block_scores):
    index, rng = random_index()
    users = rng.normal(size=(3, index.dim)).astype(np.float32)
    excluded = [index.rows_of(index.post_ids[:500]), np.zeros(0, np.int64), np.arange(0, 3000, 2)]
    ids, scores = index.search(users, 300, excluded, created_after=1000, created_at_or_before=9000,
                                 block_scores=block_scores)
    for q in range(3):
        want_ids, want_scores = brute_force(index, users[q], 300, excluded[q], 1000, 9000)
        np.testing.assert_allclose(scores[q], want_scores, atol=1e-5)
        # Same ids in the same order; a swap is allowed only between float-equal scores.
        swapped = ids[q] != want_ids
        true_score = index.vectors[index.rows_of(ids[q])] @ users[q]
        assert swapped.sum() <= 4 and np.allclose(true_score[swapped], want_scores[swapped], atol=1e-5)
        assert not np.isin(ids[q], index.post_ids[excluded[q]]).any()


def test_exhausted_corpus_returns_padding_not_excluded_items():
    index, rng = random_index(n=300)
    everything_but_ten = np.arange(10, 300)
    ids, scores = index.search(rng.normal(size=(1, index.dim)), 50, [everything_but_ten])
    assert set(ids[0][:10]) == set(index.post_ids[:10])
    assert np.all(ids[0][10:] == 0) and np.all(np.isneginf(scores[0][10:]))


def test_save_load_round_trip(tmp_path):
    index, rng = random_index(n=500)
    index.meta = {"model_step": 7}
    path = index.save(tmp_path / "sub" / "index.npz")
    loaded = CorpusIndex.load(path)
    for name in ("post_ids", "author_ids", "created_s", "vectors"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(index, name))
    assert loaded.meta == {"model_step": 7}
    users = rng.normal(size=(2, index.dim))
    np.testing.assert_array_equal(loaded.search(users, 20)[0], index.search(users, 20)[0])
    assert not (tmp_path / "sub" / "index.npz.tmp").exists()


def test_bad_files_and_inputs_fail_clearly(tmp_path):
    index, rng = random_index(n=100)
    with pytest.raises(CorpusIndexError, match="missing.npz: index file not found"):
        CorpusIndex.load(tmp_path / "missing.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip at all")
    with pytest.raises(CorpusIndexError, match="corrupt.npz: not a readable Phoenix index"):
        CorpusIndex.load(corrupt)
    other = tmp_path / "other.npz"
    np.savez(other, header=np.frombuffer(b'{"format": "x", "version": 9}', np.uint8), post_ids=np.ones(1),
             author_ids=np.ones(1), created_s=np.ones(1), vectors=np.ones((1, 2)))
    with pytest.raises(CorpusIndexError, match="unsupported index format"):
        CorpusIndex.load(other)
    with pytest.raises(ValueError, match="corpus is empty"):
        CorpusIndex(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4), np.float32))
    with pytest.raises(ValueError, match="post_ids: post 5 appears more than once"):
        CorpusIndex(np.array([5, 5]), np.array([1, 2]), np.array([0, 0]), np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="k: 101 is larger than the corpus"):
        index.search(rng.normal(size=(1, index.dim)), 101)
    with pytest.raises(ValueError, match="user_vectors: contain NaN"):
        index.search(np.full((1, index.dim), np.nan), 5)
    with pytest.raises(ValueError, match=r"user_vectors: expected shape \[Q, 16\]"):
        index.search(np.ones((1, 3)), 5)

import numpy as np
import pytest
from helpers import SMALL_MODEL

from phoenix.model.ranker import build_ranker
from phoenix.serving.inputs import CandidatePost, Engagement
from phoenix.serving.service import RankerService


@pytest.fixture(scope="module")
def service():
    return RankerService(build_ranker(SMALL_MODEL, seed=1), SMALL_MODEL)


def history(n: int) -> list[Engagement]:
    return [Engagement(100 + i, 10 + i % 3, ("favorite",) if i % 2 else ("click", "dwell"), i % 4) for i in range(n)]


def candidates(n: int) -> list[CandidatePost]:
    return [CandidatePost(1 + i, 1 + i % 7, 0) for i in range(n)]


def test_scores_are_probabilities_and_independent_of_request_size(service):
    many = service.score(5, history(6), candidates(40))  # bucket 128
    few = service.score(5, history(6), candidates(3))  # bucket 8
    assert many.shape == (40, 15) and few.shape == (3, 15)
    assert np.all((many > 0) & (many < 1))
    np.testing.assert_allclose(few, many[:3], atol=1e-6)
    shuffled = candidates(40)[::-1]
    np.testing.assert_allclose(service.score(5, history(6), shuffled)[::-1], many, atol=1e-6)
    other_user = service.score(6, history(6), candidates(3))
    assert np.abs(other_user - few).max() > 1e-4


def test_more_than_one_chunk_of_candidates(service):
    pool = candidates(600)
    big = service.score(5, history(2), pool)
    np.testing.assert_allclose(big[550:553], service.score(5, history(2), pool[550:553]), atol=1e-6)


def test_bad_requests_are_named(service):
    with pytest.raises(ValueError, match="candidates: a request needs"):
        service.score(5, history(2), [])
    with pytest.raises(ValueError, match=r"history\[1\].actions: unknown action 'like'"):
        service.score(5, [history(1)[0], Engagement(9, 9, ("like",))], candidates(2))
    with pytest.raises(ValueError, match="exceed model.history_len=12"):
        service.score(5, history(13), candidates(2))
    with pytest.raises(ValueError, match=r"candidates\[0\].post_id"):
        service.score(5, history(1), [CandidatePost(0, 3)])


def test_keep_recent_history_uses_the_last_items(service):
    recent = RankerService(service.model, service.config, keep_recent_history=True)
    np.testing.assert_allclose(
        recent.score(5, history(20), candidates(4)), service.score(5, history(20)[-12:], candidates(4)), atol=1e-6
    )
    empty = service.score(5, [], candidates(4))  # a brand-new user still gets scores
    assert np.all(np.isfinite(empty))

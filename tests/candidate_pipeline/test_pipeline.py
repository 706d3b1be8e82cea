import logging

import pytest

from candidate_pipeline.in_network import InNetworkPostStore, InNetworkSource
from candidate_pipeline.pipeline import CandidatePipeline, ScoringError
from candidate_pipeline.selector import TopKSelector
from candidate_pipeline.session import RecordServedPosts, ServedPostsHydrator, SessionStore
from candidate_pipeline.stages import Filter, Scorer, Source
from candidate_pipeline.types import HOUR_S, Candidate, Query, candidate_from_dict, query_from_dict
from filters.pre_scoring import PreviouslyServedFilter

NOW = 10 * 24 * HOUR_S


class ListSource(Source):
    def __init__(self, name, posts):
        self.name, self.posts = name, posts

    def fetch(self, query):
        return [Candidate(p, 1, NOW, source=self.name) for p in self.posts]


class BrokenSource(Source):
    name = "broken"

    def fetch(self, query):
        raise RuntimeError("backend down")


class ScoreById(Scorer):
    name = "by_id"

    def score(self, query, candidates):
        for c in candidates:
            c.final_score = float("nan") if c.post_id == 3 else float(c.post_id)


class DropOdd(Filter):
    name = "drop_odd"

    def reason(self, query, candidate, dropped_post_ids):
        return "odd" if candidate.post_id % 2 else None


def test_sources_run_failures_are_skipped_and_drops_explained(caplog):
    pipeline = CandidatePipeline(
        sources=[ListSource("a", [1, 2, 3, 4]), BrokenSource(), ListSource("b", [6, 8])],
        filters=[DropOdd()],
        scorers=[ScoreById()],
        selector=TopKSelector(3),
        result_size=2,
    )
    with caplog.at_level(logging.WARNING):
        result = pipeline.run(Query(1, NOW), [Candidate(10, 1, NOW), Candidate(3, 1, NOW)])
    assert [c.post_id for c in result.selected] == [10, 8]
    reasons = {(d.candidate.post_id, d.stage) for d in result.dropped}
    assert {(1, "drop_odd"), (3, "drop_odd"), (4, "top_k"), (2, "top_k"), (6, "result_size")} <= reasons
    assert result.errors == ["source broken failed: backend down"] and "backend down" in caplog.text
    assert {"source:a", "source:b", "filter:drop_odd", "scorer:by_id", "total"} <= set(result.timings_ms)


def test_nan_scores_sort_last_and_disabled_stages_are_skipped():
    dropper = DropOdd()
    dropper.enabled = False
    pipeline = CandidatePipeline(sources=[ListSource("a", [1, 2, 3])], filters=[dropper], scorers=[ScoreById()])
    assert [c.post_id for c in pipeline.run(Query(1, NOW)).selected] == [2, 1, 3]


def test_a_failing_scorer_fails_the_request_and_a_bad_request_stays_the_callers_error():
    class Broken(Scorer):
        name = "broken_scorer"

        def score(self, query, candidates):
            raise RuntimeError("model missing")

    with pytest.raises(ScoringError, match="scorer broken_scorer failed: model missing"):
        CandidatePipeline(sources=[ListSource("a", [1])], scorers=[Broken()]).run(Query(1, NOW))

    class Validating(Scorer):
        name = "validating_scorer"

        def score(self, query, candidates):
            raise ValueError("candidate_surface: surfaces must be in [0, 16), got 99")

    with pytest.raises(ValueError, match="candidate_surface") as err:
        CandidatePipeline(sources=[ListSource("a", [1])], scorers=[Validating()]).run(Query(1, NOW))
    assert not isinstance(err.value, ScoringError)


def test_in_network_store_appends_expires_and_caps():
    store = InNetworkPostStore(retention_hours=48, max_posts_per_author=2)
    store.add_all([Candidate(1, 7, NOW - 50 * HOUR_S), Candidate(2, 7, NOW - 3 * HOUR_S),
                   Candidate(3, 7, NOW - 1 * HOUR_S), Candidate(4, 8, NOW - 2 * HOUR_S),
                   Candidate(5, 9, NOW - 1 * HOUR_S)])
    assert len(store) == 4  # author 7 keeps its 2 newest
    got = InNetworkSource(store, max_results=10).fetch(Query(1, NOW, following=frozenset({7, 8})))
    assert [c.post_id for c in got] == [3, 4, 2] and all(c.in_network and c.source == "in_network" for c in got)
    assert [c.post_id for c in InNetworkSource(store, 2).fetch(Query(1, NOW, following=frozenset({7, 8})))] == [3, 4]
    assert store.expire(NOW + int(46.5 * HOUR_S)) == 2  # posts 2 and 4 are now over 48 h old
    with pytest.raises(ValueError, match="post 9: the in-network store needs"):
        store.add(Candidate(9, 7, None))


@pytest.mark.parametrize(
    "data, message",
    [
        ({"request_time_s": 5}, "user.user_id: expected an integer or string id"),
        ({"user_id": 1}, "user.request_time_s"),
        ({"user_id": 1, "request_time_s": 5, "history": [{"post_id": 2, "author_id": float("nan")}]},
         r"user.history\[0\].author_id: is NaN"),
        ({"user_id": 1, "request_time_s": 5, "following": [3, 2.5]}, r"user.following\[1\]"),
        ({"user_id": " ", "request_time_s": 5}, "user.user_id: empty id"),
        ({"user_id": 1, "request_time_s": 5, "folowing": []}, "unknown field"),
    ],
)
def test_bad_queries_name_the_field(data, message):
    with pytest.raises(ValueError, match=message):
        query_from_dict(data)


def test_candidates_from_dicts():
    c = candidate_from_dict({"post_id": 4, "author_id": 2, "created_s": 9, "text": "hi", "reply_to_post_id": 1})
    assert c.is_reply and not c.is_repost and c.source == "caller"
    with pytest.raises(ValueError, match=r"candidates\[0\].post_id"):
        candidate_from_dict({"author_id": 2})
    with pytest.raises(ValueError, match=r"candidates\[0\].created_s"):
        candidate_from_dict({"post_id": 4, "created_s": "yesterday"})


def test_a_session_is_not_served_the_same_post_twice():
    store = SessionStore()
    pipeline = CandidatePipeline(
        query_hydrators=[ServedPostsHydrator(store)],
        sources=[ListSource("a", [1, 2, 4, 6])],
        filters=[PreviouslyServedFilter()],
        scorers=[ScoreById()],
        side_effects=[RecordServedPosts(store)],
        result_size=2,
    )
    first = pipeline.run(Query(1, NOW, options={"session_id": "s1"}))
    second = pipeline.run(Query(1, NOW, options={"session_id": "s1"}))
    other = pipeline.run(Query(1, NOW, options={"session_id": "s2"}))
    assert [c.post_id for c in first.selected] == [6, 4]
    assert [c.post_id for c in second.selected] == [2, 1]
    assert [c.post_id for c in other.selected] == [6, 4]

import math

import numpy as np
import pytest
from helpers import SMALL_MODEL

from candidate_pipeline.types import Candidate, HistoryItem, Query
from phoenix.config import ScoringConfig
from phoenix.model.ranker import build_ranker
from phoenix.model.weighted_score import WeightedScorer
from phoenix.serving.service import RankerService
from scorers.author_diversity import AuthorDiversityScorer, diversity_multiplier
from scorers.out_of_network import OutOfNetworkScorer
from scorers.phoenix_scorer import PhoenixScorer
from scorers.weighted import WeightedScoreStage


def scored(post_id, author_id, weighted, **kw):
    c = Candidate(post_id, author_id, 0, **kw)
    c.weighted_score = weighted
    c.final_score = weighted
    return c


def test_diversity_multiplier_sequence():
    assert [diversity_multiplier(k, 0.5, 0.25) for k in range(4)] == [1.0, 0.625, 0.4375, 0.34375]


def test_author_diversity_counts_higher_ranked_posts_of_the_same_author():
    cands = [scored(1, 7, 0.5), scored(2, 7, 0.9), scored(3, 8, 0.8), scored(4, 7, 0.1), scored(5, 9, math.nan)]
    AuthorDiversityScorer(0.5, 0.25).score(Query(1, 0), cands)
    by_id = {c.post_id: c for c in cands}
    assert by_id[2].diversity_multiplier == 1.0  # author 7's best
    assert by_id[1].diversity_multiplier == 0.625 and by_id[4].diversity_multiplier == 0.4375
    assert by_id[3].diversity_multiplier == 1.0
    assert by_id[1].final_score == pytest.approx(0.5 * 0.625)


def test_out_of_network_discount_and_switch_for_in_network_replies():
    q = Query(1, 0, following=frozenset({7}))
    cands = [scored(1, 7, 1.0), scored(2, 8, 1.0), scored(3, 7, 1.0, reply_to_post_id=99)]
    OutOfNetworkScorer(0.75, True).score(q, cands)
    assert [c.network_multiplier for c in cands] == [1.0, 0.75, 0.75]
    OutOfNetworkScorer(0.75, False).score(q, cands)
    assert [c.final_score for c in cands] == [1.0, 0.75, 1.0]


def test_weighted_stage_uses_the_probabilities():
    stage = WeightedScoreStage(WeightedScorer(ScoringConfig("t", {"a": 1.0, "b": -2.0}), ("a", "b")))
    cands = [Candidate(1, 1, 0), Candidate(2, 1, 0)]
    cands[0].action_probs = {"a": 0.5, "b": 0.0}
    cands[1].action_probs = {"a": 0.5, "b": 0.5}
    stage.score(Query(1, 0), cands)
    assert cands[0].weighted_score == pytest.approx(0.501)
    assert 0 <= cands[1].weighted_score < 0.001  # net negative: squashed below every positive


def test_phoenix_scorer_probs_do_not_change_when_candidates_are_added_or_removed():
    scorer = PhoenixScorer(RankerService(build_ranker(SMALL_MODEL, seed=2), SMALL_MODEL))
    q = Query(3, 0, history=[HistoryItem(5, 6, ("favorite",)), HistoryItem(8, 9, ("click", "reply"))])
    many = [Candidate(i, 100 + i % 5, 0) for i in range(1, 30)]
    few = [Candidate(i, 100 + i % 5, 0) for i in (4, 17)]
    scorer.score(q, many)
    scorer.score(q, few)
    for c in few:
        np.testing.assert_allclose(list(c.action_probs.values()), list(many[c.post_id - 1].action_probs.values()),
                                   atol=1e-6)
    assert set(few[0].action_probs) == set(SMALL_MODEL.actions)

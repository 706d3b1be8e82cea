"""Requests of any size reuse a few compiled programs (candidate counts are bucketed)."""

import dataclasses

import jax
import numpy as np
from helpers import SMALL_MODEL

from phoenix.model.ranker import build_ranker
from phoenix.serving.inputs import CandidatePost, Engagement
from phoenix.serving.service import CANDIDATE_BUCKETS, RankerService

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def test_request_sizes_compile_at_most_once_per_bucket():
    config = dataclasses.replace(SMALL_MODEL, history_len=11)  # shapes no other test compiled
    service = RankerService(build_ranker(config, seed=4), config)
    compiles = []

    def listener(event, duration, **kwargs):
        if event == COMPILE_EVENT:
            compiles.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        history = [Engagement(100 + i, 7, ("favorite",)) for i in range(5)]
        for n in (1, 37, 5, 600, 300, 8, 1500, 33, 2):
            probs = service.score(9, history[: n % 6], [CandidatePost(i + 1, 3) for i in range(n)])
            assert probs.shape == (n, config.num_actions) and np.isfinite(probs).all()
        assert 1 <= len(compiles) <= len(CANDIDATE_BUCKETS)
        before = len(compiles)
        service.score(9, history, [CandidatePost(i + 1, 3) for i in range(77)])  # a bucket seen before
        assert len(compiles) == before
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)

"""Requests of any size reuse a few compiled programs (history and candidate counts are bucketed)."""

import dataclasses

import jax
import numpy as np
from helpers import SMALL_MODEL

from phoenix.model.ranker import build_ranker
from phoenix.serving.inputs import CandidatePost, Engagement
from phoenix.serving.prefix_scorer import CHUNK_BUCKETS, chunk_plan, history_buckets
from phoenix.serving.service import RankerService

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
        history = [Engagement(100 + i, 7, ("favorite",)) for i in range(11)]
        sizes = (1, 37, 5, 600, 300, 8, 1500, 33, 2, 5000)
        for n in sizes:
            probs = service.score(9, history[: n % 12], [CandidatePost(i + 1, 3) for i in range(n)])
            assert probs.shape == (n, config.num_actions) and np.isfinite(probs).all()
        def history_bucket(n):
            return next(b for b in history_buckets(11) if b >= n % 12)

        plans = {n: [size for *_, size in chunk_plan(n, CHUNK_BUCKETS)] for n in sizes}
        prefix_programs = {(history_bucket(n), plans[n][0]) for n in sizes}
        chunk_programs = {(history_bucket(n), size) for n in sizes for size in plans[n][1:]}
        # One program per (history, chunk) bucket pair for the prefix with the first chunk, one
        # per pair for further chunks against the cached prefix.
        assert len(compiles) == len(prefix_programs) + len(chunk_programs)
        before = len(compiles)
        for n in sizes:  # every bucket seen before: nothing compiles again
            service.score(4, history[: n % 12], [CandidatePost(i + 50, 6) for i in range(n)])
        assert len(compiles) == before
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)

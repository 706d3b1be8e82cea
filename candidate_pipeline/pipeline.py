"""CandidatePipeline: runs the stages of a For You request and explains the result.

Order: query hydrators -> sources -> candidate hydrators -> pre-scoring filters
-> scorers -> selector (top-K by final score, NaN last) -> post-selection filters ->
result size -> side effects. Hydrators of one kind and sources run
concurrently. A failing source or hydrator is logged and skipped (the request
still returns, with the error in `errors`); a failing scorer fails the request.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from candidate_pipeline.selector import TopKSelector
from candidate_pipeline.stages import CandidateHydrator, Filter, QueryHydrator, Scorer, SideEffect, Source
from candidate_pipeline.types import Candidate, Query

log = logging.getLogger(__name__)


class ScoringError(RuntimeError):
    """A scorer failed: the request cannot be ranked."""


@dataclasses.dataclass
class Dropped:
    candidate: Candidate
    stage: str
    reason: str


@dataclasses.dataclass
class PipelineResult:
    query: Query
    selected: list[Candidate]
    dropped: list[Dropped]
    timings_ms: dict[str, float]
    errors: list[str]


@dataclasses.dataclass
class CandidatePipeline:
    query_hydrators: Sequence[QueryHydrator] = ()
    sources: Sequence[Source] = ()
    candidate_hydrators: Sequence[CandidateHydrator] = ()
    filters: Sequence[Filter] = ()
    scorers: Sequence[Scorer] = ()
    selector: TopKSelector = dataclasses.field(default_factory=TopKSelector)
    post_selection_filters: Sequence[Filter] = ()
    side_effects: Sequence[SideEffect] = ()
    result_size: int = 35

    def _timed(self, timings: dict[str, float], name: str, fn: Callable, *args):
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            timings[name] = (time.perf_counter() - start) * 1e3

    def _concurrently(self, stages, call, timings, errors, kind: str) -> list:
        """Run `call(stage)` for enabled stages in threads; failures are logged and skipped."""
        stages = [s for s in stages if s.enabled]
        if not stages:
            return []
        with ThreadPoolExecutor(max_workers=len(stages)) as pool:
            futures = [(s, pool.submit(self._timed, timings, f"{kind}:{s.name}", call, s)) for s in stages]
        results = []
        for stage, future in futures:
            try:
                results.append(future.result())
            except Exception as err:  # noqa: BLE001 - a broken source must not fail the request
                log.warning("%s %s failed: %s", kind, stage.name, err)
                errors.append(f"{kind} {stage.name} failed: {err}")
        return results

    def _filter(self, filters, query, candidates, dropped, timings) -> list[Candidate]:
        dropped_ids = {d.candidate.post_id for d in dropped}
        for f in (f for f in filters if f.enabled):
            candidates, removed = self._timed(timings, f"filter:{f.name}", f.apply, query, candidates, dropped_ids)
            for c, why in removed:
                dropped.append(Dropped(c, f.name, why))
                dropped_ids.add(c.post_id)
        return candidates

    def run(self, query: Query, caller_candidates: Sequence[Candidate] = ()) -> PipelineResult:
        """Rank for `query`; `caller_candidates` come first, as the "caller" source."""
        timings: dict[str, float] = {}
        errors: list[str] = []
        dropped: list[Dropped] = []
        total = time.perf_counter()

        self._concurrently(self.query_hydrators, lambda h: h.hydrate(query), timings, errors, "query_hydrator")
        fetched = self._concurrently(self.sources, lambda s: s.fetch(query), timings, errors, "source")
        candidates = list(caller_candidates) + [c for batch in fetched for c in batch]
        self._concurrently(
            self.candidate_hydrators, lambda h: h.hydrate(query, candidates), timings, errors, "candidate_hydrator"
        )
        candidates = self._filter(self.filters, query, candidates, dropped, timings)

        for scorer in (s for s in self.scorers if s.enabled):
            try:
                self._timed(timings, f"scorer:{scorer.name}", scorer.score, query, candidates)
            except ValueError:
                raise  # the request itself is bad (the model's checks name the field): the caller's error
            except Exception as err:
                raise ScoringError(f"scorer {scorer.name} failed: {err}") from err

        top, below = self._timed(timings, f"selector:{self.selector.name}", self.selector.select, query, candidates)
        dropped.extend(Dropped(c, self.selector.name, why) for c, why in below)
        selected = self._filter(self.post_selection_filters, query, top, dropped, timings)
        for c in selected[self.result_size :]:
            dropped.append(Dropped(c, "result_size", f"beyond the result size {self.result_size}"))
        selected = selected[: self.result_size]

        for effect in (e for e in self.side_effects if e.enabled):
            try:
                self._timed(timings, f"side_effect:{effect.name}", effect.run, query, selected)
            except Exception as err:  # noqa: BLE001
                errors.append(f"side_effect {effect.name} failed: {err}")
        timings["total"] = (time.perf_counter() - total) * 1e3
        return PipelineResult(query, selected, dropped, timings, errors)

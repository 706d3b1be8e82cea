"""The kinds of pipeline stage. Each has a `name` (used in timings, config
switches and drop reasons) and an `enabled` flag set from config.

Mutation contract: hydrators and scorers fill fields of the objects they are
given; filters return the kept candidates and say why each other one left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from candidate_pipeline.types import Candidate, Query


class Stage:
    name: str = "stage"
    enabled: bool = True


class QueryHydrator(Stage):
    """Adds what is known about the viewer (follows, blocks, history) to the query."""

    def hydrate(self, query: Query) -> None:
        raise NotImplementedError


class Source(Stage):
    """Produces candidates for a query."""

    def fetch(self, query: Query) -> list[Candidate]:
        raise NotImplementedError


class CandidateHydrator(Stage):
    """Fills fields of candidates (author, network membership, text...)."""

    def hydrate(self, query: Query, candidates: Sequence[Candidate]) -> None:
        raise NotImplementedError


class Filter(Stage):
    """Removes candidates; every removal carries a reason.

    Simple filters implement `reason` (None keeps the candidate); filters that
    compare candidates with each other override `apply`.
    """

    def reason(self, query: Query, candidate: Candidate, dropped_post_ids: set[int]) -> str | None:
        raise NotImplementedError

    def apply(
        self, query: Query, candidates: list[Candidate], dropped_post_ids: set[int]
    ) -> tuple[list[Candidate], list[tuple[Candidate, str]]]:
        kept, removed = [], []
        for c in candidates:
            why = self.reason(query, c, dropped_post_ids)
            if why is None:
                kept.append(c)
            else:
                removed.append((c, why))
        return kept, removed


def keep_first_per_key(
    candidates: list[Candidate], key: Callable[[Candidate], object], reason: Callable[[object], str]
) -> tuple[list[Candidate], list[tuple[Candidate, str]]]:
    """Keep the first candidate of each key (callers order by priority or score); explain the rest."""
    seen: set = set()
    kept, removed = [], []
    for c in candidates:
        k = key(c)
        if k in seen:
            removed.append((c, reason(k)))
        else:
            seen.add(k)
            kept.append(c)
    return kept, removed


class Scorer(Stage):
    """Sets score fields on every candidate; a failure fails the request."""

    def score(self, query: Query, candidates: list[Candidate]) -> None:
        raise NotImplementedError


class SideEffect(Stage):
    """Runs after the response is built (logging, recording served posts)."""

    def run(self, query: Query, selected: Sequence[Candidate]) -> None:
        raise NotImplementedError

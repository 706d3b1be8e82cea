"""Plain request inputs shared by the scoring service and the candidate pipeline (no JAX here)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Engagement:
    """One history item: a post the user acted on, with the actions taken."""

    post_id: int
    author_id: int
    actions: tuple[str, ...]
    surface: int = 0


@dataclasses.dataclass(frozen=True)
class CandidatePost:
    """The part of a candidate the ranker sees."""

    post_id: int
    author_id: int
    surface: int = 0

"""What a session has already been served, so the next request does not repeat it.

`ServedPostsHydrator` (a query hydrator) adds the session's served posts to the
query before filtering; `RecordServedPosts` (a side effect) stores what this
response served. Both share one in-memory `SessionStore`.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence

from candidate_pipeline.stages import QueryHydrator, SideEffect
from candidate_pipeline.types import SESSION_OPTION, Candidate, Query


class SessionStore:
    def __init__(self):
        self._served: dict[str, set[int]] = defaultdict(set)
        self._lock = threading.Lock()

    def served(self, session_id: str) -> frozenset[int]:
        with self._lock:
            return frozenset(self._served.get(session_id, ()))

    def record(self, session_id: str, post_ids: Sequence[int]) -> None:
        with self._lock:
            self._served[session_id].update(post_ids)


class ServedPostsHydrator(QueryHydrator):
    name = "served_posts"

    def __init__(self, store: SessionStore):
        self.store = store

    def hydrate(self, query: Query) -> None:
        session = query.options.get(SESSION_OPTION)
        if session is not None:
            query.served_post_ids = query.served_post_ids | self.store.served(session)


class RecordServedPosts(SideEffect):
    name = "record_served"

    def __init__(self, store: SessionStore):
        self.store = store

    def run(self, query: Query, selected: Sequence[Candidate]) -> None:
        session = query.options.get(SESSION_OPTION)
        if session is not None:
            self.store.record(session, [c.post_id for c in selected])

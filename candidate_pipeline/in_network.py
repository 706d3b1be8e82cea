"""In-network source: an in-memory store of recent posts by author (X's "Thunder").

Posts are appended as they are created and expire after the retention window;
a request gets the recent posts of the accounts the viewer follows, newest
first, capped per author and per request.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
from collections import defaultdict
from collections.abc import Iterable

from candidate_pipeline.stages import Source
from candidate_pipeline.types import HOUR_S, Candidate, Query


class InNetworkPostStore:
    def __init__(self, retention_hours: float = 48.0, max_posts_per_author: int = 50):
        self.retention_s = retention_hours * HOUR_S
        self.max_posts_per_author = max_posts_per_author
        self._by_author: dict[int, list[tuple[int, int, Candidate]]] = defaultdict(list)  # (created, id, post)
        self._lock = threading.Lock()

    def add(self, post: Candidate) -> None:
        if post.author_id is None or post.created_s is None:
            raise ValueError(f"post {post.post_id}: the in-network store needs author_id and created_s")
        with self._lock:
            posts = self._by_author[post.author_id]
            bisect.insort(posts, (post.created_s, post.post_id, post), key=lambda e: (e[0], e[1]))
            del posts[: max(0, len(posts) - self.max_posts_per_author)]

    def add_all(self, posts: Iterable[Candidate]) -> None:
        for p in posts:
            self.add(p)

    def expire(self, now_s: int) -> int:
        """Drop posts older than the retention window; returns how many were dropped."""
        cutoff = now_s - self.retention_s
        dropped = 0
        with self._lock:
            for author in list(self._by_author):
                posts = self._by_author[author]
                keep = bisect.bisect_left(posts, cutoff, key=lambda e: e[0])
                dropped += keep
                del posts[:keep]
                if not posts:
                    del self._by_author[author]
        return dropped

    def recent_posts(self, authors: Iterable[int], now_s: int, limit: int) -> list[Candidate]:
        """Posts of `authors` created in (now - retention, now], newest first, at most `limit`."""
        cutoff = now_s - self.retention_s
        found = []
        with self._lock:
            for author in authors:
                for created, post_id, post in self._by_author.get(author, ()):
                    if cutoff < created <= now_s:
                        found.append((created, post_id, post))
        found.sort(key=lambda e: (-e[0], e[1]))
        return [dataclasses.replace(p, source="in_network", in_network=True) for _, _, p in found[:limit]]

    def __len__(self) -> int:
        return sum(len(p) for p in self._by_author.values())


class InNetworkSource(Source):
    name = "in_network"

    def __init__(self, store: InNetworkPostStore, max_results: int = 1200):
        self.store = store
        self.max_results = max_results

    def fetch(self, query: Query) -> list[Candidate]:
        return self.store.recent_posts(query.following, query.request_time_s, self.max_results)

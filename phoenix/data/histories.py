"""Users' engagement histories from a dataset: what serving needs to build a request.

`UserHistories` answers "the last H things this user engaged with before time
t" for `Ranker.user()`, and `history_requests` writes every user's history
with their impressions of a split as candidates: a request file that
`phoenix score` reads (`phoenix history`). Each user's history ends before
the time of their first impression of the split, so no candidate's outcome is
in it, and it is what `UserHistories.rows` gives for that time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from phoenix.data.dataset import SPLITS, ImpressionLog, column, read_impressions, read_metadata, read_parquet
from phoenix.data.packing import user_event_groups


class UserHistories:
    """Each user's impressions, engagements and follows, grouped once (rows of the log, in time order)."""

    def __init__(self, log: ImpressionLog, end_time_s: int, follows: tuple[np.ndarray, np.ndarray] | None = None):
        self.log, self.end_time_s = log, end_time_s
        self._shown = dict(user_event_groups(log, np.arange(log.user_id.size)))
        engaged = log.labels.any(axis=1)
        self._engaged = {user: rows[engaged[rows]] for user, rows in self._shown.items()}
        users, authors = follows if follows is not None else (np.zeros(0, np.int64), np.zeros(0, np.int64))
        order = np.argsort(users, kind="stable")
        self._follow_users, self._follow_authors = users[order], authors[order]  # [F] sorted by user

    @classmethod
    def load(cls, data_dir: str | Path) -> UserHistories:
        """A dataset's impressions, its end time and its follow graph (when it has one)."""
        data_dir = Path(data_dir)
        follows_path = data_dir / "follows.parquet"
        follows = None
        if follows_path.is_file():
            table = read_parquet(follows_path, ["user_id", "author_id"])
            follows = (column(table, "user_id", follows_path), column(table, "author_id", follows_path))
        return cls(read_impressions(data_dir), int(read_metadata(data_dir)["end_time_s"]), follows)

    def following(self, user_id: int) -> frozenset[int]:
        start, end = np.searchsorted(self._follow_users, [user_id, user_id + 1])
        return frozenset(self._follow_authors[start:end].tolist())

    def _before(self, rows: np.ndarray, before_s: int | None) -> np.ndarray:
        return rows if before_s is None else rows[self.log.time_s[rows] < before_s]

    def rows(self, user_id: int, before_s: int | None = None, limit: int | None = None) -> np.ndarray:
        """Rows of the user's last `limit` engagements strictly before `before_s` (oldest first)."""
        if user_id not in self._shown:
            raise ValueError(f"user_id: {user_id} has no impressions in this dataset")
        rows = self._before(self._engaged[user_id], before_s)
        return rows[-limit:] if limit else rows

    def shown(self, user_id: int, before_s: int | None = None) -> np.ndarray:
        """Rows of every impression of the user strictly before `before_s`."""
        return self._before(self._shown.get(user_id, np.zeros(0, np.int64)), before_s)

    def actions(self, row: int) -> tuple[str, ...]:
        return tuple(a for a, hit in zip(self.log.actions, self.log.labels[row]) if hit)


def _lists(values: np.ndarray, lengths: np.ndarray) -> pa.Array:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))


def history_requests(log: ImpressionLog, split: str, history_len: int) -> pa.Table:
    """One request per user with impressions in `split`: their last `history_len` engagements
    before the first of those impressions, and those impressions as candidates."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    engaged = log.labels.any(axis=1)
    users, history, candidates = [], [], []
    for user, rows in user_event_groups(log, np.arange(log.user_id.size)):
        shown = rows[log.split[rows] == SPLITS.index(split)]
        if shown.size:
            before = rows[(log.time_s[rows] < log.time_s[shown[0]]) & engaged[rows]]
            users.append(user)
            history.append(before[-history_len:])
            candidates.append(shown)
    if not users:
        raise ValueError(f"split {split!r} has no impressions")
    h_rows, c_rows = np.concatenate(history), np.concatenate(candidates)
    h_len, c_len = np.array([h.size for h in history]), np.array([c.size for c in candidates])
    hot_row, hot_action = np.nonzero(log.labels[h_rows])  # names of the actions of each history item
    names = np.array(log.actions, dtype=object)[hot_action]
    per_item = _lists(names.astype(str), np.bincount(hot_row, minlength=h_rows.size))
    offsets = np.concatenate([[0], np.cumsum(h_len)]).astype(np.int32)
    return pa.table({
        "user_id": pa.array(np.array(users, np.int64)),
        "history_post_id": _lists(log.post_id[h_rows], h_len),
        "history_author_id": _lists(log.author_id[h_rows], h_len),
        "history_actions": pa.ListArray.from_arrays(pa.array(offsets), per_item),
        "history_surface": _lists(log.surface[h_rows].astype(np.int32), h_len),
        "candidate_post_id": _lists(log.post_id[c_rows], c_len),
        "candidate_author_id": _lists(log.author_id[c_rows], c_len),
        "candidate_surface": _lists(log.surface[c_rows].astype(np.int32), c_len),
    })

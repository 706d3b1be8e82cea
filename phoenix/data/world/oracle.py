"""Ground truth for any (user, post, surface), read back from a world directory.

The impressions carry the truth of what was shown; the oracle answers for
pairs that were never shown too, which is what a feed demo or a retrieval
evaluation needs ("what would this user really do with this post?").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from phoenix.data.dataset import DatasetError, read_metadata
from phoenix.data.world.entities import Authors, Posts, Users
from phoenix.data.world.truth import action_probabilities, impression_traits


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        table = pq.read_table(path)
    except Exception as err:
        raise DatasetError(f"{path}: unreadable or corrupt Parquet: {err}") from err
    return {name: np.asarray(table.column(name).to_pylist()) for name in table.column_names}


class WorldOracle:
    """True P(action) for arbitrary users, posts and surfaces of one world."""

    def __init__(self, world_dir: str | Path):
        world_dir = Path(world_dir)
        self.actions = tuple(read_metadata(world_dir)["actions"])
        self.users = Users(**_read(world_dir / "truth" / "users.parquet"))
        self.authors = Authors(**_read(world_dir / "truth" / "authors.parquet"))
        self.posts = Posts(**_read(world_dir / "truth" / "posts.parquet"))
        follows = _read(world_dir / "follows.parquet")
        self.follow_keys = set(zip(follows["user_id"].tolist(), follows["author_id"].tolist()))
        order = np.argsort(follows["user_id"], kind="stable")
        users, authors = follows["user_id"][order], follows["author_id"][order]
        bounds = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True]) if users.size else np.zeros(1, int)
        self._following = {int(users[a]): authors[a:b] for a, b in zip(bounds[:-1], bounds[1:])}

    def following(self, user_id: int) -> np.ndarray:
        """Author ids the user follows (1-based)."""
        return self._following.get(int(user_id), np.zeros(0, np.int64))

    @property
    def num_users(self) -> int:
        return self.users.activity.size

    @property
    def num_posts(self) -> int:
        return self.posts.author.size

    def probabilities(
        self, user_id: int, post_ids: np.ndarray, surface: np.ndarray | int = 0, actions: tuple[str, ...] | None = None
    ) -> np.ndarray:
        """P(action) [len(post_ids), A] for one user (1-based ids), for all or the given actions."""
        if not 1 <= user_id <= self.num_users:
            raise ValueError(f"user_id: {user_id} is not a user of this world (1..{self.num_users})")
        post = np.asarray(post_ids, dtype=np.int64) - 1
        if post.size and (post.min() < 0 or post.max() >= self.num_posts):
            raise ValueError(f"post_ids: ids must be in 1..{self.num_posts}")
        author_ids = self.posts.author[post] + 1
        followed = np.isin(author_ids, self.following(user_id))
        user = np.full(post.size, user_id - 1)
        surface = np.broadcast_to(np.asarray(surface), post.shape)
        traits = impression_traits(self.users, self.authors, self.posts, user, post, followed, surface)
        return action_probabilities(traits, self.actions if actions is None else actions)

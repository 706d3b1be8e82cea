"""Ground truth for any (user, post, surface), read back from a world directory.

The impressions carry the truth of what was shown; the oracle answers for
pairs that were never shown too, which is what a feed demo or a retrieval
evaluation needs ("what would this user really do with this post?").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from phoenix.world.entities import Authors, Posts, Users
from phoenix.world.io import WorldDataError, read_metadata
from phoenix.world.truth import action_probabilities, impression_traits


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise WorldDataError(f"{path}: file not found")
    try:
        table = pq.read_table(path)
    except Exception as err:
        raise WorldDataError(f"{path}: unreadable or corrupt Parquet: {err}") from err
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

    @property
    def num_users(self) -> int:
        return self.users.activity.size

    @property
    def num_posts(self) -> int:
        return self.posts.author.size

    def probabilities(self, user_id: int, post_ids: np.ndarray, surface: np.ndarray | int = 0) -> np.ndarray:
        """P(action) [len(post_ids), A] for one user (1-based ids)."""
        if not 1 <= user_id <= self.num_users:
            raise ValueError(f"user_id: {user_id} is not a user of this world (1..{self.num_users})")
        post = np.asarray(post_ids, dtype=np.int64) - 1
        if post.size and (post.min() < 0 or post.max() >= self.num_posts):
            raise ValueError(f"post_ids: ids must be in 1..{self.num_posts}")
        author_ids = self.posts.author[post] + 1
        followed = np.array([(user_id, int(a)) in self.follow_keys for a in author_ids], bool)
        user = np.full(post.size, user_id - 1)
        surface = np.broadcast_to(np.asarray(surface), post.shape)
        traits = impression_traits(self.users, self.authors, self.posts, user, post, followed, surface)
        return action_probabilities(traits, self.actions)

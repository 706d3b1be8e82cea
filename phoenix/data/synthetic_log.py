"""A synthetic interaction log with sequential structure, for tests and the scale benchmark.

Items belong to topics (item i has topic i mod T). Each user stays in one
topic and mostly moves to the topic's next item (probability `follow`),
otherwise to a random item of the topic, so next-item models have something
real to learn and co-occurrence is strong. Ratings 1-5 lean on an item bias.
Rows come out in global time order, interleaving users like a real log.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def synthetic_interactions(
    num_users: int, num_items: int, num_interactions: int, seed: int = 0,
    num_topics: int = 50, follow: float = 0.8, min_per_user: int = 3,
) -> pa.Table:
    """Columns user_id, item_id, rating, timestamp; exactly `num_interactions` rows."""
    if num_interactions < num_users * min_per_user:
        raise ValueError(f"num_interactions: need at least {min_per_user} per user ({num_users * min_per_user})")
    rng = np.random.default_rng(seed)
    extra = rng.multinomial(num_interactions - num_users * min_per_user, rng.dirichlet(np.ones(num_users)))
    lengths = extra + min_per_user  # [U]
    topics = min(num_topics, num_items)
    per_topic = [np.arange(t, num_items, topics) + 1 for t in range(topics)]
    bias = rng.normal(0, 1, num_items + 1)
    users, items = [], []
    for user, n in enumerate(lengths.tolist(), start=1):
        pool = per_topic[rng.integers(topics)]
        position = rng.integers(pool.size)
        jumps = rng.random(n) >= follow
        targets = rng.integers(pool.size, size=n)
        sequence = np.empty(n, np.int64)
        for j in range(n):
            position = targets[j] if jumps[j] else (position + 1) % pool.size
            sequence[j] = pool[position]
        users.append(np.full(n, user))
        items.append(sequence)
    user, item = np.concatenate(users), np.concatenate(items)
    # Each user's events spread over the same period; a global sort by time interleaves users.
    times = np.concatenate([np.sort(rng.uniform(0, 1e7, n)) for n in lengths.tolist()]).astype(np.int64)
    order = np.argsort(times, kind="stable")
    rating = np.clip(np.rint(3.5 + bias[item] + rng.normal(0, 1, item.size)), 1, 5).astype(np.int64)
    columns = {"user_id": user, "item_id": item, "rating": rating, "timestamp": times}
    return pa.table({name: values[order] for name, values in columns.items()})

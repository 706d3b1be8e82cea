"""Phoenix's inputs on an interaction log: packed training windows and evaluation requests.

Training: a user's training sequence is cut into windows of up to H items
(H = model.history_len) that advance by H/2; every window after the first
trains only its second half, so each position is a target exactly once and
sees at least H/2 items of context (except a user's first ones). Position j of
a window becomes 1 + k candidates, all with history cutoff j: the true item
(labels: the actions of that interaction) and k sampled negatives (no
actions). With the causal history and candidate isolation, one forward pass
trains every position of the window, each seeing only the items before it.

Windows are batched by size bucket so short sequences do not pay for H: a
batch holds windows of one bucket, grouped afresh every epoch. The buckets are
2, 3, 4, 6, 8, 12, ... (powers of two and one and a half times them): a window
fills at least two thirds of its bucket's positions above 2, where powers of
two alone leave half of them padding (a sparse log's windows, mostly under 8
long, filled 61% of their positions with a smallest bucket of 8, and fill 87%
with these); each bucket in use costs one compilation of the step. A batch of
short windows then holds few positions, so the training loss sums its
positions against the epoch's mean per step (`TrainingWindows.num_targets`)
rather than averaging them: a position weighs the same in any batch.
With `by_tokens` a batch of shorter windows holds proportionally more of them
(batch_size · H / bucket), so every step carries about as many positions and a
sparse log, whose windows are mostly 8 long, takes a few large steps an epoch
instead of many small ones.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from phoenix.config import ModelConfig
from phoenix.data.batch import CandidateBatch, PrefixBatch, RankerBatch, hash_table_ids
from phoenix.data.packing import half_overlapping_windows
from phoenix.data.protocol import NextItemSplit

MIN_BUCKET = 2


def size_bucket(n: np.ndarray | int, cap: int) -> np.ndarray:
    """Smallest bucket >= n among MIN_BUCKET, 3, 4, 6, 8, 12, 16, ... (2^k and 3·2^(k-1)), capped at `cap`."""
    n = np.maximum(np.asarray(n, np.int64), MIN_BUCKET)
    power = 2 ** np.ceil(np.log2(n)).astype(np.int64)  # smallest power of two >= n
    three_quarters = 3 * power // 4  # the bucket between power / 2 and power
    return np.minimum(np.where((power >= 4) & (three_quarters >= n), three_quarters, power), cap)


@dataclasses.dataclass
class HashTables:
    """Hashes of every user, item and author index, computed once (row = dense index)."""

    user: np.ndarray  # [U+1, K]
    item: np.ndarray  # [I+1, K]
    author: np.ndarray  # [W+1, K]
    item_author: np.ndarray  # [I+1] author index of each item (0: none), from its interactions

    @classmethod
    def build(cls, split: NextItemSplit, config: ModelConfig) -> HashTables:
        """Hashes of the split's model ids (the log's own ids, encoded as serving encodes them);
        `model.user_ids` / `model.author_ids` false give that table the padding hash."""
        num_users, num_authors = split.train_len.size, int(split.sequences.author.max(initial=0))
        item_author = np.zeros(split.num_items + 1, np.int64)
        item_author[split.sequences.item] = split.sequences.author
        ids = split.model_ids or {"user": np.arange(num_users + 1), "item": np.arange(split.num_items + 1),
                                  "author": np.arange(num_authors + 1)}
        return cls(
            hash_table_ids(ids["user"][: num_users + 1], "user", "user_id", config),
            hash_table_ids(ids["item"][: split.num_items + 1], "post", "item_id", config),
            hash_table_ids(ids["author"][: num_authors + 1], "author", "author_id", config),
            item_author,
        )


def ranker_batch(
    split: NextItemSplit,
    tables: HashTables,
    users: np.ndarray,  # [B] (0: an empty padding request)
    history_rows: np.ndarray,  # [B, H] rows of split.sequences, -1 for padding
    candidate_items: np.ndarray,  # [B, C] item indices, 0 for padding
    cutoff: np.ndarray,  # [B, C]
) -> RankerBatch:
    seqs, pad = split.sequences, history_rows < 0
    rows = np.maximum(history_rows, 0)
    items = np.where(pad, 0, seqs.item[rows])  # [B, H]
    authors = np.where(pad, 0, seqs.author[rows])  # [B, H]
    candidate_authors = tables.item_author[candidate_items]  # [B, C]
    prefix = PrefixBatch(
        user_hashes=tables.user[users],
        history_post_hashes=tables.item[items],
        history_author_hashes=tables.author[authors],
        history_actions=np.where(pad[..., None], 0, seqs.actions[rows]).astype(np.int8),
        history_surface=np.zeros(items.shape, np.int32),
    )
    candidates = CandidateBatch(
        post_hashes=tables.item[candidate_items],
        author_hashes=tables.author[candidate_authors],
        surface=np.zeros(candidate_items.shape, np.int32),
        cutoff=cutoff.astype(np.int32),
    )
    return RankerBatch(prefix, candidates)


@dataclasses.dataclass
class TrainingWindows:
    """Every training window: its user, first sequence row, length and first target position."""

    user: np.ndarray  # [N]
    start: np.ndarray  # [N] row of split.sequences
    length: np.ndarray  # [N]
    first: np.ndarray  # [N]
    bucket: np.ndarray  # [N] history-size bucket of the window
    target_bucket: np.ndarray  # [N] bucket of its number of targets (length - first)

    @property
    def shape_key(self) -> np.ndarray:  # [N] windows with equal keys share padded shapes
        return self.bucket * (int(self.bucket.max(initial=0)) + 1) + self.target_bucket

    def __len__(self) -> int:
        return int(self.user.size)

    @property
    def num_targets(self) -> int:  # the target positions of an epoch
        return int((self.length - self.first).sum())


def training_windows(split: NextItemSplit, history_len: int, recent: int = 0) -> TrainingWindows:
    """Windows over every user's training sequence; with `recent` > 0 only the user's last `recent`
    positions are targets (earlier items still serve as their context), as SASRec trains on the
    last max_len items: the loss then weighs a heavy user no more than `recent` light ones,
    while the protocol weighs every user once."""
    h = history_len
    users, starts, lengths, firsts = [], [], [], []
    for user in np.flatnonzero(split.train_len > 0) + 1:
        n, base = int(split.train_len[user - 1]), int(split.sequences.offsets[user - 1])
        trained_from = max(0, n - recent) if recent else 0
        for start, first in half_overlapping_windows(n, h):
            length, first = min(h, n - start), max(first, trained_from - start)
            if first >= length:
                continue  # every position of this window comes before the trained ones
            users.append(user)
            starts.append(base + start)
            lengths.append(length)
            firsts.append(first)
    lengths, firsts = np.asarray(lengths, np.int64), np.asarray(firsts, np.int64)
    buckets = size_bucket(lengths, h)
    # At least a quarter of the history bucket: the few windows with a short tail of targets
    # share a shape with their neighbours instead of costing a compile each (about 8 s apiece).
    target_buckets = np.maximum(size_bucket(lengths - firsts, h), buckets // 4)
    return TrainingWindows(
        np.asarray(users, np.int64), np.asarray(starts, np.int64), lengths, firsts, buckets, target_buckets
    )


def batch_sizes(windows: TrainingWindows, batch_size: int, history_len: int, by_tokens: bool) -> np.ndarray:  # [N]
    """Windows per batch for each window's shape: `batch_size`, or with `by_tokens` batch_size · H / bucket
    (a multiple of batch_size, so a batch still splits evenly over the mesh's data axis)."""
    if not by_tokens:
        return np.full(len(windows), batch_size, np.int64)
    return batch_size * (history_len // windows.bucket)


def num_batches(windows: TrainingWindows, sizes: np.ndarray) -> int:
    """Batches per epoch of `epoch_batches` (every shape bucket's last batch may be short)."""
    _, first, counts = np.unique(windows.shape_key, return_index=True, return_counts=True)
    return int((-(-counts // sizes[first])).sum())


def epoch_batches(windows: TrainingWindows, sizes: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Window indices of each batch: windows of one shape bucket, shuffled within and across buckets;
    `sizes` [N] is the batch size of each window's shape (`batch_sizes`)."""
    order = rng.permutation(len(windows))
    key = windows.shape_key
    batches = []
    for bucket in np.unique(key):
        members = order[key[order] == bucket]
        size = int(sizes[members[0]])
        batches += [members[lo : lo + size] for lo in range(0, members.size, size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def training_batch(
    split: NextItemSplit, tables: HashTables, windows: TrainingWindows, chosen: np.ndarray,
    batch_size: int, negatives: int, sampler, rng: np.random.Generator,
) -> tuple[RankerBatch, np.ndarray]:
    """A padded batch of windows, 1 + `negatives` candidates per target position, and labels [B, C, A]."""
    hb, pb = int(windows.bucket[chosen].max()), int(windows.target_bucket[chosen].max())
    b, k = batch_size, negatives
    fields = np.zeros((4, b), np.int64)  # rows past the chosen windows: user 0, no history, no targets
    fields[:, : chosen.size] = [getattr(windows, name)[chosen] for name in ("user", "length", "first", "start")]
    users, length, first, start = fields  # [B] each
    column = np.arange(hb)  # [Hb]
    history_rows = np.where(column < length[:, None], start[:, None] + column, -1)  # [B, Hb]
    target = np.arange(pb) < (length - first)[:, None]  # [B, Pb]
    positions = np.where(target, first[:, None] + np.arange(pb), -1)  # [B, Pb] target positions, -1 padding
    target_rows = np.where(target, start[:, None] + positions, -1)  # [B, Pb] rows of split.sequences
    positive_items = np.where(target, split.sequences.item[np.maximum(target_rows, 0)], 0)  # [B, Pb]
    owner = np.broadcast_to(users[:, None, None], (b, k, pb))
    negative_items = np.where(target[:, None], sampler.draw(owner, rng), 0)  # [B, k, Pb]
    candidates = np.concatenate([positive_items[:, None], negative_items], axis=1).reshape(b, -1)  # [B, (1+k)·Pb]
    cutoff = np.tile(np.maximum(positions, 0), (1, 1 + k))  # [B, (1+k)·Pb]
    labels = np.zeros((b, (1 + k) * pb, split.sequences.actions.shape[1]), np.int8)
    labels[:, :pb] = np.where(target[..., None], split.sequences.actions[np.maximum(target_rows, 0)], 0)
    return ranker_batch(split, tables, users, history_rows, candidates, cutoff), labels


def evaluation_batches(split: NextItemSplit, which: str, history_len: int, batch_size: int):
    """(eval-user rows, RankerBatch inputs) per batch: the last H items before the target, then 1+n candidates."""
    lengths = np.minimum(split.history_len(which), history_len)
    ends = split.sequences.offsets[split.eval_users - 1] + split.history_len(which)  # [E] row after history
    candidates = split.candidates(which)
    buckets = size_bucket(lengths, history_len)
    order = np.argsort(buckets, kind="stable")
    for lo in range(0, order.size, batch_size):
        rows = order[lo : lo + batch_size]
        hb = int(buckets[rows].max())
        history_rows = np.full((batch_size, hb), -1, np.int64)
        cand = np.zeros((batch_size, candidates.shape[1]), np.int64)
        cutoff = np.zeros_like(cand)
        users = np.zeros(batch_size, np.int64)
        for i, r in enumerate(rows.tolist()):
            n = int(lengths[r])
            history_rows[i, :n] = ends[r] - n + np.arange(n)
            cand[i], cutoff[i], users[i] = candidates[r], n, split.eval_users[r]
        yield rows, users, history_rows, cand, cutoff

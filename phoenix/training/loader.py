"""A prefetching, resumable batch loader: the batch of step s is a fixed function of (seed, s).

    loader = BatchLoader(make_batch, num_examples, batch_size, seed, start_step, end_step)
    for step, batch in loader: ...

A background thread builds (and, given a sharding, places on the devices) up
to `prefetch` batches ahead of the training step, so host work overlaps device
work. Because rows depend only on (seed, step), a job restarted from the
checkpoint of step s gets exactly the batches s, s+1, ... the uninterrupted
job would have got: no example is seen twice or skipped.

Under several processes (`jax.distributed`) every process holds only its own
examples (it read only its own users' rows) and draws its share of each
global batch, batch_size / process_count rows, from them with its own
permutation stream (seed, epoch, process index). Each process's rows become
its addressable shards of one global array, split over the mesh's `data` axis.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from phoenix.data.packing import batch_rows
from phoenix.parallel.partitioning import batch_sharding

_DONE = object()


class BatchLoader:
    def __init__(
        self,
        make_batch: Callable[[np.ndarray], Any],
        num_examples: int,
        batch_size: int,
        seed: int,
        start_step: int,
        end_step: int,
        prefetch: int = 2,
        sharding: jax.sharding.Sharding | None = None,
        process_index: int = 0,
        process_count: int = 1,
    ):
        if batch_size % process_count:
            raise ValueError(f"batch_size: {batch_size} does not split evenly over {process_count} processes")
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index: {process_index} is not in [0, {process_count})")
        self.make_batch = make_batch
        self.num_examples, self.batch_size, self.seed = num_examples, batch_size, seed
        self.start_step, self.end_step = start_step, end_step
        self.prefetch = max(1, prefetch)
        self.sharding = sharding
        self.process_index, self.process_count = process_index, process_count

    def rows(self, step: int) -> np.ndarray:
        """This process's example rows (indices into its own examples) of step `step`."""
        local_batch = self.batch_size // self.process_count
        stream = None if self.process_count == 1 else self.process_index
        return batch_rows(self.num_examples, local_batch, self.seed, step, stream)

    def place(self, batch: Any) -> Any:
        """This process's part of the global batch, as global arrays split by `sharding`."""
        if self.sharding is None:
            return batch
        return jax.tree.map(lambda x: jax.make_array_from_process_local_data(self.sharding, x), batch)

    def _produce(self, out: queue.Queue, stop: threading.Event) -> None:
        try:
            for step in range(self.start_step, self.end_step):
                batch = self.place(self.make_batch(self.rows(step)))
                while not stop.is_set():
                    try:
                        out.put((step, batch), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            out.put(_DONE)
        except BaseException as err:  # handed to the consumer, which re-raises it
            out.put(err)

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        out: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        worker = threading.Thread(target=self._produce, args=(out, stop), daemon=True, name="batch-loader")
        worker.start()
        try:
            while True:
                item = out.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise RuntimeError(f"batch loader failed: {item}") from item
                yield item
        finally:
            stop.set()
            worker.join(timeout=5)


def sharded_batches(
    make_batch: Callable[[np.ndarray], Any], num_examples: int, batch_size: int, seed: int, mesh: jax.sharding.Mesh
) -> Callable[[int, int], BatchLoader]:
    """`fit`'s batches for a model whose step s draws rows (seed, s): this process's share of each
    global batch, placed over the mesh's `data` axis, for any range of steps."""
    sharding = batch_sharding(mesh)
    return lambda start, end: BatchLoader(
        make_batch, num_examples, batch_size, seed, start, end, sharding=sharding,
        process_index=jax.process_index(), process_count=jax.process_count(),
    )


def epoch_steps(
    start: int, end: int, steps_per_epoch: int, epoch_batches: Callable[[int], Iterator[Any]]
) -> Iterator[tuple[int, Any]]:
    """(step, batch) for steps [start, end) of a stream cut into epochs of `steps_per_epoch` batches.

    Epoch e's batches are `epoch_batches(e)` in order (a model whose batches are planned per epoch,
    with shapes bucketed and negatives drawn from one generator per epoch); a start inside an
    epoch replays that epoch's plan and skips the batches already trained.
    """
    step = (start // steps_per_epoch) * steps_per_epoch
    while step < end:
        for batch in epoch_batches(step // steps_per_epoch):
            if step >= end:
                return
            if step >= start:
                yield step, batch
            step += 1

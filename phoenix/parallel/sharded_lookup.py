"""Embedding lookups from tables whose rows are split over the `model` mesh axis.

Production tables have hundreds of millions of rows, more than one device
holds. Under a mesh whose `model` axis has several devices, each device keeps
one contiguous block of rows; a lookup runs on every device at once (inside
`shard_map`): a device gathers the ids that fall in its block, writes zeros for
the others, and a `psum` over `model` adds the blocks together, so every id
gets its one real row and no device ever holds the whole table. The backward
pass is the same in reverse: each device scatters gradients into its own rows.

Without such a mesh (one device, or tracing outside a mesh context) it is a
plain gather; both give the same numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

MODEL_AXIS = "model"
DATA_AXIS = "data"


def _active_model_axis() -> jax.sharding.AbstractMesh | None:
    """The context mesh if it splits tables over several devices, else None."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or MODEL_AXIS not in mesh.axis_names or mesh.shape[MODEL_AXIS] == 1:
        return None
    return mesh


def _local_rows(table_block: jnp.ndarray, ids: jnp.ndarray) -> jnp.ndarray:
    """Rows of the ids that fall in this device's block; zeros for the rest, summed over `model`."""
    block_rows = table_block.shape[0]
    local = ids - jax.lax.axis_index(MODEL_AXIS) * block_rows  # [...]
    inside = (local >= 0) & (local < block_rows)  # [...]
    rows = jnp.take(table_block, jnp.where(inside, local, 0), axis=0)  # [..., E]
    rows = jnp.where(inside[..., None], rows, jnp.zeros((), rows.dtype))  # [..., E]
    return jax.lax.psum(rows, MODEL_AXIS)


def embedding_lookup(table: jnp.ndarray, ids: jnp.ndarray) -> jnp.ndarray:  # [N, E], [...] -> [..., E]
    """table[ids], with the table split by rows over `model` when the context mesh says so."""
    mesh = _active_model_axis()
    if mesh is None:
        return jnp.take(table, ids, axis=0)
    if table.shape[0] % mesh.shape[MODEL_AXIS]:
        raise ValueError(
            f"embedding table: {table.shape[0]} rows do not split over mesh.model = {mesh.shape[MODEL_AXIS]}"
        )
    batch_axis = DATA_AXIS if DATA_AXIS in mesh.axis_names and ids.ndim else None
    if batch_axis and ids.shape[0] % mesh.shape[DATA_AXIS]:
        batch_axis = None  # an odd-sized batch (evaluation): every data row looks up all of it
    lookup = jax.shard_map(
        _local_rows,
        mesh=mesh,
        in_specs=(P(MODEL_AXIS, None), P(batch_axis)),
        out_specs=P(batch_axis),
    )
    return lookup(table, ids)

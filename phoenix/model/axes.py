"""Layers that declare the logical axes of their parameters where they are created (MaxText's way).

Every parameter carries an `axes` metadata tuple naming each dimension
logically (`table_rows`, `embed`, `mlp`, `q_heads`, ...). One rule table in
`phoenix.parallel.partitioning` maps those names to mesh axes; a parameter
without axes is an error there, never silently replicated, so renaming an
attribute cannot quietly change how a model is laid out. Optimizer moments
inherit their parameter's metadata, so they follow it on the mesh.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx


def token_matmul(x: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:  # [..., N]
    """x [..., K] @ kernel [K, N], with every leading axis flattened into one row axis first.

    Why not `einsum("btk,kn->btn")`: its kernel gradient contracts two axes (b
    and t), and XLA's CPU backend answers that with a transposed copy of the
    output gradient and a slower matmul; on rows [B·T, K] the kernel gradient
    is one plain rows-contracting product (the base training step 14% faster,
    `bench/train_throughput.py`; `docs/benchmarks.md`).
    """
    rows = x.reshape(-1, x.shape[-1])  # [B·T, K]
    return (rows @ kernel).reshape(*x.shape[:-1], kernel.shape[-1])  # [..., N]


class Dense(nnx.Linear):
    """`nnx.Linear` (same parameters, same checkpoints) applied to flattened rows (see `token_matmul`)."""

    def __call__(self, inputs: jnp.ndarray) -> jnp.ndarray:  # [..., in] -> [..., out]
        rows = super().__call__(inputs.reshape(-1, inputs.shape[-1]))  # [B·T, out]
        return rows.reshape(*inputs.shape[:-1], rows.shape[-1])


def linear(
    in_features: int, out_features: int, axes: tuple[str, str], *, rngs: nnx.Rngs, use_bias: bool = True, **kwargs
) -> nnx.Linear:
    """A dense layer whose kernel has logical axes `axes` (in, out) and whose bias has (out,)."""
    return Dense(
        in_features, out_features, use_bias=use_bias, rngs=rngs,
        kernel_metadata={"axes": axes}, bias_metadata={"axes": axes[1:]}, **kwargs,
    )


def embed(num_rows: int, dim: int, axes: tuple[str, str], *, rngs: nnx.Rngs, **kwargs) -> nnx.Embed:
    """`nnx.Embed` whose table has logical axes `axes` (rows, features)."""
    return nnx.Embed(num_rows, dim, rngs=rngs, embedding_metadata={"axes": axes}, **kwargs)


def layer_norm(dim: int, axis: str, *, rngs: nnx.Rngs, **kwargs) -> nnx.LayerNorm:
    return nnx.LayerNorm(dim, rngs=rngs, scale_metadata={"axes": (axis,)}, bias_metadata={"axes": (axis,)}, **kwargs)


def param(value: jnp.ndarray, axes: tuple[str, ...]) -> nnx.Param:
    """A bare `nnx.Param` with its logical axes (one name per dimension; () for a scalar)."""
    if len(axes) != value.ndim:
        raise ValueError(f"axes {axes} do not match a parameter of shape {value.shape}")
    return nnx.Param(value, axes=axes)

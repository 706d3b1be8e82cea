"""The device mesh and where every array of the training state lives on it.

MaxText-style: each parameter names its axes logically (`table_rows`, `mlp`,
`q_heads`, ...) and one rule table maps logical names to mesh axes. Changing
how the model is laid out is a config change (`[mesh]`), never a model edit:

    table_rows -> model                    hashed embedding tables split by rows
    mlp, q_heads, kv_heads -> model        only with mesh.shard_transformer
    everything else -> replicated          norms, projections, small tables, counters

Optimizer moments follow their parameter (their paths end the same way).
"""

from __future__ import annotations

import jax
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from phoenix.config import MeshConfig
from phoenix.parallel.sharded_lookup import DATA_AXIS, MODEL_AXIS

# Logical axes of the parameters, matched against the end of the parameter's path.
LOGICAL_AXES: tuple[tuple[str, tuple[str | None, ...]], ...] = (
    ("table/embedding", ("table_rows", "table_embed")),
    ("attn/q_proj/kernel", ("embed", "q_heads")),
    ("attn/k_proj/kernel", ("embed", "kv_heads")),
    ("attn/v_proj/kernel", ("embed", "kv_heads")),
    ("attn/out_proj/kernel", ("q_heads", "embed")),
    ("ffn/gate/kernel", ("embed", "mlp")),
    ("ffn/value/kernel", ("embed", "mlp")),
    ("ffn/out/kernel", ("mlp", "embed")),
)


def make_mesh(config: MeshConfig, devices: list | None = None) -> Mesh:
    """A `data` x `model` mesh over `devices` (default: every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    data, model = config.axis_sizes(len(devices))
    return jax.make_mesh((data, model), (DATA_AXIS, MODEL_AXIS), (AxisType.Auto, AxisType.Auto), devices=devices)


def axis_rules(config: MeshConfig) -> dict[str, str | None]:
    """Logical axis name -> mesh axis (None: replicated)."""
    transformer = MODEL_AXIS if config.shard_transformer else None
    return {
        "batch": DATA_AXIS,
        "table_rows": MODEL_AXIS,
        "table_embed": None,
        "embed": None,
        "q_heads": transformer,
        "kv_heads": transformer,
        "mlp": transformer,
    }


def path_name(path: tuple) -> str:
    """'blocks/0/ffn/gate/kernel' for a key path of a state tree (attribute keys dropped)."""
    parts = []
    for key in path:
        if isinstance(key, jax.tree_util.DictKey):
            parts.append(str(key.key))
        elif isinstance(key, jax.tree_util.SequenceKey):
            parts.append(str(key.idx))
    return "/".join(parts)


def logical_axes(name: str, ndim: int) -> tuple[str | None, ...]:
    """The logical axes of the array at path `name` (all None: replicated)."""
    for suffix, axes in LOGICAL_AXES:
        if (name == suffix or name.endswith("/" + suffix)) and len(axes) == ndim:
            return axes
    return (None,) * ndim


def partition_spec(name: str, shape: tuple[int, ...], rules: dict[str, str | None], mesh: Mesh) -> P:
    """Mesh axes of one array; an axis that does not split evenly is an error naming the array."""
    axes = []
    for size, logical in zip(shape, logical_axes(name, len(shape))):
        axis = rules.get(logical) if logical else None
        if axis is not None and size % mesh.shape[axis]:
            raise ValueError(
                f"{name}: dimension {size} ({logical}) does not split over mesh axis {axis!r} of size "
                f"{mesh.shape[axis]}; change mesh.{axis} (or mesh.shard_transformer)"
            )
        axes.append(axis)
    return P(*axes)


def state_shardings(state, mesh: Mesh, config: MeshConfig):
    """A tree of `NamedSharding` shaped like `state` (concrete or abstract arrays)."""
    rules = axis_rules(config)

    def sharding(path, leaf):
        return NamedSharding(mesh, partition_spec(path_name(path), tuple(leaf.shape), rules, mesh))

    return jax.tree_util.tree_map_with_path(sharding, state)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Every batch array: leading (example) axis split over `data`, the rest replicated."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())

"""The device mesh and where every array of the training state lives on it.

MaxText-style: each parameter declares its logical axes where it is created
(`phoenix.model.axes`: `table_rows`, `embed`, `mlp`, `q_heads`, ...) and one
rule table maps logical names to mesh axes. Changing how the model is laid out
is a config change (`[mesh]`), never a model edit:

    table_rows -> model                    hashed embedding tables split by rows
    mlp, q_heads, kv_heads -> model        only with mesh.shard_transformer
    every other name -> replicated         norms, projections, small tables

A parameter without declared axes, or an axis name missing from the table, is
an error naming the parameter: nothing is silently replicated. Optimizer
moments carry their parameter's axes; counters, RNG state and other
non-parameter variables are replicated.
"""

from __future__ import annotations

import jax
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from phoenix.config import MeshConfig
from phoenix.parallel.sharded_lookup import DATA_AXIS, MODEL_AXIS

# Every logical axis name a parameter may declare.
LOGICAL_NAMES = (
    "table_rows", "table_embed", "actions", "surfaces", "tokens_in", "embed", "norm", "match",
    "q_heads", "kv_heads", "mlp", "items", "positions",
)


def make_mesh(config: MeshConfig, devices: list | None = None) -> Mesh:
    """A `data` x `model` mesh over `devices` (default: every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    data, model = config.axis_sizes(len(devices))
    return jax.make_mesh((data, model), (DATA_AXIS, MODEL_AXIS), (AxisType.Auto, AxisType.Auto), devices=devices)


def axis_rules(config: MeshConfig) -> dict[str, str | None]:
    """Logical axis name -> mesh axis (None: replicated); one entry for every name in LOGICAL_NAMES."""
    transformer = MODEL_AXIS if config.shard_transformer else None
    rules: dict[str, str | None] = dict.fromkeys(LOGICAL_NAMES)
    rules.update({"table_rows": MODEL_AXIS, "q_heads": transformer, "kv_heads": transformer, "mlp": transformer})
    return rules


def path_name(path: tuple) -> str:
    """'blocks/0/ffn/gate/kernel' for a key path of a state tree (attribute keys dropped)."""
    parts = []
    for key in path:
        if isinstance(key, jax.tree_util.DictKey):
            parts.append(str(key.key))
        elif isinstance(key, jax.tree_util.SequenceKey):
            parts.append(str(key.idx))
        elif isinstance(key, jax.tree_util.GetAttrKey) and key.name not in ("value", "raw_value", "_raw_value"):
            parts.append(key.name)
    return "/".join(parts)


def logical_axes(name: str, variable: nnx.Variable) -> tuple[str | None, ...]:
    """The declared axes of a state variable; replicated (all None) for what is not a parameter."""
    axes = variable.get_metadata().get("axes")
    shape = tuple(variable.value.shape)
    if axes is None:
        if isinstance(variable, nnx.Param):
            raise ValueError(f"{name}: parameter has no logical axes; create it with phoenix.model.axes")
        return (None,) * len(shape)
    if len(axes) != len(shape):
        raise ValueError(f"{name}: logical axes {axes} do not match its shape {shape}")
    return tuple(axes)


def partition_spec(
    name: str, shape: tuple[int, ...], axes: tuple[str | None, ...], rules: dict[str, str | None], mesh: Mesh
) -> P:
    """Mesh axes of one array; an unknown name or an axis that does not split evenly names the array."""
    mesh_axes = []
    for size, logical in zip(shape, axes):
        if logical is not None and logical not in rules:
            raise ValueError(f"{name}: logical axis {logical!r} has no rule (known: {', '.join(rules)})")
        axis = rules[logical] if logical is not None else None
        if axis is not None and size % mesh.shape[axis]:
            raise ValueError(
                f"{name}: dimension {size} ({logical}) does not split over mesh axis {axis!r} of size "
                f"{mesh.shape[axis]}; change mesh.{axis} (or mesh.shard_transformer)"
            )
        mesh_axes.append(axis)
    return P(*mesh_axes)


def state_specs(state, mesh: Mesh, config: MeshConfig):
    """A tree of `PartitionSpec` shaped like `state` (an nnx state of concrete or abstract arrays)."""
    rules = axis_rules(config)

    def spec(path, variable):
        name = path_name(path)
        shape = tuple(variable.value.shape)
        return variable.replace(partition_spec(name, shape, logical_axes(name, variable), rules, mesh))

    return jax.tree_util.tree_map_with_path(spec, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def state_shardings(state, mesh: Mesh, config: MeshConfig):
    """A tree of `NamedSharding` shaped like `state`."""
    return jax.tree.map(lambda spec: NamedSharding(mesh, spec), state_specs(state, mesh, config))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Every batch array: leading (example) axis split over `data`, the rest replicated."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())

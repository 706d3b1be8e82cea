import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from helpers import SMALL_MODEL

from phoenix.config import ConfigError, MeshConfig, TrainConfig
from phoenix.model.ranker import build_ranker
from phoenix.parallel.partitioning import axis_rules, make_mesh, partition_spec, path_name, state_specs
from phoenix.training.optimizer import make_optimizer


def ranker_state():
    model = build_ranker(SMALL_MODEL)
    return nnx.state((model, make_optimizer(model, TrainConfig(), 100)))


def specs(config: MeshConfig, mesh_shape: dict) -> dict[str, tuple]:
    """Mesh axes of every state array, with a stand-in mesh of the given axis sizes."""
    class FakeMesh:
        shape = mesh_shape

    layout = state_specs(ranker_state(), FakeMesh, config)
    leaves = jax.tree_util.tree_leaves_with_path(layout, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))
    return {path_name(p): tuple(spec) for p, spec in leaves}


def test_tables_and_their_adam_moments_split_by_rows_and_nothing_else_unless_asked():
    layout = specs(MeshConfig(model=2), {"data": 4, "model": 2})
    tables = {k: v for k, v in layout.items() if k.endswith("table/embedding")}
    assert len(tables) == 3 * 3  # user, post, author tables; their parameter, mu and nu
    assert all(v == ("model", None) for v in tables.values())
    assert all(all(a is None for a in v) for k, v in layout.items() if k not in tables)
    sharded = specs(MeshConfig(model=2, shard_transformer=True), {"data": 4, "model": 2})
    assert sharded["0/encoder/blocks/0/ffn/gate/kernel"] == (None, "model")
    assert sharded["0/encoder/blocks/0/ffn/out/kernel"] == ("model", None)
    assert sharded["0/encoder/blocks/0/attn/out_proj/kernel"] == ("model", None)
    assert sharded["0/unembed/kernel"] == (None, None)


def test_an_axis_that_does_not_split_is_named():
    class FakeMesh:
        shape = {"data": 1, "model": 3}

    rules = axis_rules(MeshConfig(model=3, shard_transformer=True))
    with pytest.raises(ValueError, match=r"blocks/0/ffn/gate/kernel: dimension 32 \(mlp\) does not split"):
        partition_spec("blocks/0/ffn/gate/kernel", (32, 32), ("embed", "mlp"), rules, FakeMesh)
    with pytest.raises(ValueError, match="w: logical axis 'vocab' has no rule"):
        partition_spec("w", (8,), ("vocab",), rules, FakeMesh)


class Unlabelled(nnx.Module):
    def __init__(self):
        self.kernel = nnx.Param(jnp.zeros((4, 4)))  # no declared axes
        self.steps = nnx.Variable(jnp.zeros(()))  # not a parameter: replicated


def test_a_parameter_without_axes_is_an_error_not_silently_replicated():
    class FakeMesh:
        shape = {"data": 2, "model": 1}

    with pytest.raises(ValueError, match="kernel: parameter has no logical axes"):
        state_specs(nnx.state(Unlabelled()), FakeMesh, MeshConfig())
    # The layout follows the declaration, not the attribute's name: a renamed table stays split.
    model = build_ranker(SMALL_MODEL)
    model.renamed_table = model.encoder.post_embed.table
    del model.encoder.post_embed.table
    leaves = jax.tree_util.tree_leaves_with_path(
        state_specs(nnx.state(model), type("M", (), {"shape": {"data": 1, "model": 2}}), MeshConfig(model=2)),
        is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec),
    )
    assert {path_name(p): tuple(spec) for p, spec in leaves}["renamed_table/embedding"] == ("model", None)


def test_mesh_sizes_must_fit_the_devices():
    assert MeshConfig().axis_sizes(8) == (8, 1)
    assert MeshConfig(model=2).axis_sizes(8) == (4, 2)
    with pytest.raises(ConfigError, match="mesh.model: 3 does not divide the 8"):
        MeshConfig(model=3).axis_sizes(8)
    with pytest.raises(ConfigError, match="mesh.data: data 2 x model 2 = 4 devices, but 8"):
        MeshConfig(data=2, model=2).axis_sizes(8)
    mesh = make_mesh(MeshConfig())  # this process: one CPU device
    assert dict(mesh.shape) == {"data": jax.device_count(), "model": 1}

"""The ranker and its optimizer laid out on a device mesh, and the compiled training step.

The state is created directly in its final layout (a jit whose outputs carry
the mesh shardings), so a table larger than one device is never materialised
whole anywhere. The step is one `jax.jit` with explicit in/out shardings: the
state keeps its layout, batches arrive split over `data`, and the state
buffers are donated so an update needs no second copy of the tables.

On one CPU this is a 1x1 mesh and the same code path as on a TPU pod slice.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import Mesh

from phoenix.config import MeshConfig, ModelConfig, TrainConfig
from phoenix.model.batch import RankerBatch
from phoenix.model.ranker import PhoenixRanker, build_ranker
from phoenix.train.partitioning import batch_sharding, replicated, state_shardings
from phoenix.train.step import make_optimizer, update_step


class ShardedTrainer:
    """(model, optimizer) as one sharded state, stepped by a jit with explicit shardings."""

    def __init__(
        self,
        build: Callable[[], tuple[nnx.Module, nnx.Optimizer]],
        mesh: Mesh,
        mesh_config: MeshConfig,
        post_id_dropout: float = 0.0,
    ):
        self.mesh = mesh
        self.graphdef, abstract = nnx.split(nnx.eval_shape(build))
        self.shardings = state_shardings(abstract, mesh, mesh_config)
        with jax.set_mesh(mesh):
            self.state = jax.jit(lambda: nnx.state(build()), out_shardings=self.shardings)()

        def step(state, batch: RankerBatch, labels: jnp.ndarray, key: jax.Array):
            model, optimizer = nnx.merge(self.graphdef, state)
            loss = update_step(model, optimizer, batch, labels, key, post_id_dropout)
            return nnx.state((model, optimizer)), loss

        data, same = batch_sharding(mesh), replicated(mesh)
        self._step = jax.jit(
            step,
            in_shardings=(self.shardings, data, data, same),
            out_shardings=(self.shardings, same),
            donate_argnums=0,
        )

    @classmethod
    def for_ranker(
        cls, model_config: ModelConfig, train_config: TrainConfig, mesh: Mesh, mesh_config: MeshConfig
    ) -> ShardedTrainer:
        def build() -> tuple[PhoenixRanker, nnx.Optimizer]:
            model = build_ranker(model_config, seed=train_config.seed)
            return model, make_optimizer(model, train_config)

        return cls(build, mesh, mesh_config, train_config.post_id_dropout)

    def step(self, batch: RankerBatch, labels: jnp.ndarray, dropout_key: jax.Array) -> jax.Array:
        """One optimizer step on a global batch (already placed by the loader); returns the loss."""
        with jax.set_mesh(self.mesh):
            self.state, loss = self._step(self.state, batch, labels, dropout_key)
        return loss

    def objects(self) -> tuple[nnx.Module, nnx.Optimizer]:
        """The current model and optimizer as NNX objects (sharing the state's arrays)."""
        return nnx.merge(self.graphdef, self.state)

    def load(self, model: nnx.Module, optimizer: nnx.Optimizer) -> None:
        """Take the state of `model` and `optimizer` (e.g. restored from a checkpoint)."""
        self.state = jax.device_put(nnx.state((model, optimizer)), self.shardings)

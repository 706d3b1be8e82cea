"""A model and its optimizer laid out on a device mesh, and the compiled training step.

Every model trains through this class: the ranker, the two-tower model,
Phoenix on a log and SASRec. A model brings a `build` function (model and
optimizer) and a loss `loss_fn(model, batch, shared, key)`; the trainer
creates the state directly in its final layout (a jit whose outputs carry the
mesh shardings, so a table larger than one device is never materialised
whole anywhere) and compiles one step with explicit shardings: the state
keeps its layout, `batch` arrives split over `data` on its leading axis,
`shared` (arrays every example uses, such as a catalogue sample) and the
dropout key are replicated, and the state buffers are donated so an update
needs no second copy of the tables.

On one CPU this is a 1x1 mesh and the same code path as on a TPU pod slice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from phoenix.config import MeshConfig
from phoenix.parallel.partitioning import batch_sharding, replicated, state_shardings

LossFn = Callable[[nnx.Module, Any, Any, jax.Array], jnp.ndarray]


class Trainer:
    """(model, optimizer) as one sharded state, stepped by a jit with explicit shardings."""

    def __init__(
        self,
        build: Callable[[], tuple[nnx.Module, nnx.Optimizer]],
        loss_fn: LossFn,
        mesh: Mesh,
        mesh_config: MeshConfig,
    ):
        self.mesh = mesh
        self.graphdef, abstract = nnx.split(nnx.eval_shape(build))
        self.shardings = state_shardings(abstract, mesh, mesh_config)
        with jax.set_mesh(mesh):
            self.state = jax.jit(lambda: nnx.state(build()), out_shardings=self.shardings)()

        def step(state, batch, shared, key: jax.Array):
            model, optimizer = nnx.merge(self.graphdef, state)
            loss, grads = nnx.value_and_grad(lambda m: loss_fn(m, batch, shared, key))(model)
            optimizer.update(model, grads)
            return nnx.state((model, optimizer)), loss

        data, same = batch_sharding(mesh), replicated(mesh)
        self._step = jax.jit(
            step,
            in_shardings=(self.shardings, data, same, same),
            out_shardings=(self.shardings, same),
            donate_argnums=0,
        )

    def step(self, batch: Any, shared: Any, dropout_key: jax.Array) -> jax.Array:
        """One optimizer step on a global batch; returns the loss (a device scalar)."""
        with jax.set_mesh(self.mesh):
            self.state, loss = self._step(self.state, batch, shared, dropout_key)
        return loss

    def objects(self) -> tuple[nnx.Module, nnx.Optimizer]:
        """The current model and optimizer as NNX objects (sharing the state's arrays)."""
        return nnx.merge(self.graphdef, self.state)

    @property
    def model(self) -> nnx.Module:
        return self.objects()[0]

    def params(self) -> nnx.State:
        """The model's `nnx.Param` state (the arrays the optimizer trains)."""
        return nnx.state(self.model, nnx.Param)

    def load(self, model: nnx.Module, optimizer: nnx.Optimizer) -> None:
        """Take the state of `model` and `optimizer` (e.g. restored from a checkpoint)."""
        self.state = jax.device_put(nnx.state((model, optimizer)), self.shardings)

    def load_params(self, params: nnx.State) -> None:
        """Replace the model's parameters (a host or device copy), keeping the optimizer state."""
        model, optimizer = self.objects()
        nnx.update(model, jax.tree.map(np.asarray, params))
        self.load(model, optimizer)

"""A model and its optimizer laid out on a device mesh, and the compiled training step.

Every model trains through this class: the ranker, the two-tower model,
Phoenix on a log and SASRec. A model brings a `build_model` function and a
loss `loss_fn(model, batch, shared, key)`; the trainer adds the optimizer of
its schedule block, creates the state directly in its final layout (a jit
whose outputs carry the mesh shardings, so a table larger than one device is
never materialised whole anywhere) and compiles one step with explicit
shardings: the state keeps its layout, `batch` arrives split over `data` on
its leading axis, `shared` (arrays every example uses, such as a catalogue
sample) and the dropout key are replicated, and the state buffers are donated
so an update needs no second copy of the tables.

On one CPU this is a 1x1 mesh and the same code path as on a TPU pod slice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from phoenix.config import ConfigError, MeshConfig, TrainConfig
from phoenix.parallel.partitioning import batch_sharding, make_mesh, replicated, state_shardings
from phoenix.parallel.sharded_lookup import DATA_AXIS
from phoenix.training.optimizer import make_optimizer

LossFn = Callable[[nnx.Module, Any, Any, jax.Array], jnp.ndarray]


def schedule_steps(schedule: TrainConfig, steps_per_epoch: int) -> tuple[int, int]:
    """(total steps, steps per unit) of a schedule: the unit is a step, or an epoch."""
    if schedule.num_epochs:
        return schedule.num_epochs * steps_per_epoch, steps_per_epoch
    return schedule.num_steps, 1


class Trainer:
    """(model, optimizer) as one sharded state, stepped by a jit with explicit shardings.

    `name` labels the progress bar and errors; `steps_per_epoch` turns an epoch schedule into steps.
    """

    def __init__(
        self,
        name: str,
        build_model: Callable[[], nnx.Module],
        loss_fn: LossFn,
        schedule: TrainConfig,
        mesh_config: MeshConfig,
        steps_per_epoch: int = 1,
    ):
        self.name, self.schedule, self.steps_per_epoch = name, schedule, steps_per_epoch
        self.total_steps, self.steps_per_unit = schedule_steps(schedule, steps_per_epoch)
        self.mesh = make_mesh(mesh_config)
        if schedule.batch_size % self.mesh.shape[DATA_AXIS]:
            raise ConfigError(f"{name}: batch_size {schedule.batch_size} does not split over the mesh's data axis "
                              f"({self.mesh.shape[DATA_AXIS]})")

        def build() -> tuple[nnx.Module, nnx.Optimizer]:
            model = build_model()
            return model, make_optimizer(model, schedule, self.total_steps)

        self.graphdef, abstract = nnx.split(nnx.eval_shape(build))
        self.shardings = state_shardings(abstract, self.mesh, mesh_config)
        with jax.set_mesh(self.mesh):
            self.state = jax.jit(lambda: nnx.state(build()), out_shardings=self.shardings)()

        def step(state, batch, shared, key: jax.Array):
            model, optimizer = nnx.merge(self.graphdef, state)
            loss, grads = nnx.value_and_grad(lambda m: loss_fn(m, batch, shared, key))(model)
            optimizer.update(model, grads)
            return nnx.state((model, optimizer)), loss

        data, same = batch_sharding(self.mesh), replicated(self.mesh)
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

    def step_flops(self, batch: Any, shared: Any, dropout_key: jax.Array) -> float:
        """XLA's count of the floating-point operations of one step on this batch's shapes."""
        with jax.set_mesh(self.mesh):
            compiled = self._step.lower(self.state, batch, shared, dropout_key).compile()
        return float(compiled.cost_analysis().get("flops", float("nan")))

    def objects(self) -> tuple[nnx.Module, nnx.Optimizer]:
        """The current model and optimizer as NNX objects (sharing the state's arrays)."""
        return nnx.merge(self.graphdef, self.state)

    @property
    def model(self) -> nnx.Module:
        return self.objects()[0]

    def params(self) -> nnx.State:
        """The model's `nnx.Param` state, read off the state tree (no module graph is rebuilt: per step)."""
        return nnx.filter_state(self.state[0], nnx.Param)

    def load(self, model: nnx.Module, optimizer: nnx.Optimizer) -> None:
        """Take the state of `model` and `optimizer` (e.g. restored from a checkpoint)."""
        self.state = jax.device_put(nnx.state((model, optimizer)), self.shardings)

    def load_params(self, params: nnx.State) -> None:
        """Replace the model's parameters (a host or device copy), keeping the optimizer state."""
        model, optimizer = self.objects()
        nnx.update(model, jax.tree.map(np.asarray, params))
        self.load(model, optimizer)

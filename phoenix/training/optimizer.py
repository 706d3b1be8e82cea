"""The one optimizer recipe, built from a `[... .train]` schedule block."""

from __future__ import annotations

import optax
from flax import nnx

from phoenix.config import TrainConfig


def learning_rate_schedule(config: TrainConfig, total_steps: int) -> optax.Schedule:
    """Linear warmup to the peak, then cosine decay to 10% over the run, or a constant rate."""
    warmup = min(config.warmup_steps, max(total_steps - 1, 0))
    if config.decay == "constant":
        if warmup == 0:
            return optax.constant_schedule(config.learning_rate)
        ramp = optax.linear_schedule(0.0, config.learning_rate, warmup)
        return optax.join_schedules([ramp, optax.constant_schedule(config.learning_rate)], [warmup])
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.learning_rate,
        warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1),
        end_value=config.learning_rate * 0.1,
    )


def make_optimizer(model: nnx.Module, config: TrainConfig, total_steps: int) -> nnx.Optimizer:
    """AdamW (Adam when weight_decay is 0) on the schedule, with global-norm clipping unless it is 0."""
    adam = optax.adamw(learning_rate_schedule(config, total_steps), b2=config.adam_b2, weight_decay=config.weight_decay)
    tx = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), adam) if config.grad_clip_norm else adam
    return nnx.Optimizer(model, tx, wrt=nnx.Param)

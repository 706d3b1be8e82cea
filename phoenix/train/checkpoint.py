"""Orbax checkpoints of the ranker: parameters, optimizer state and progress.

A workdir holds `config.toml` (what the model was trained with) and
`checkpoints/<step>/` written by an orbax `CheckpointManager`. Orbax finalises
a step atomically, so a job killed mid-save leaves the previous step intact.
Nothing is unpickled: arrays come back through orbax's array handlers and
progress through JSON.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from flax import nnx

from phoenix.config import ConfigError, PhoenixConfig, load_config, save_config
from phoenix.model.ranker import PhoenixRanker, build_ranker


class CheckpointError(ValueError):
    """A workdir or checkpoint is missing or unreadable (names the path)."""


def checkpoint_manager(workdir: str | Path, keep: int = 2, save_every: int = 1) -> ocp.CheckpointManager:
    directory = (Path(workdir) / "checkpoints").absolute()
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=save_every, create=True)
    return ocp.CheckpointManager(directory, options=options, item_names=("params", "optimizer", "progress"))


def save_checkpoint(
    manager: ocp.CheckpointManager, step: int, model: nnx.Module, optimizer: nnx.Optimizer, progress: dict
) -> None:
    manager.save(
        step,
        args=ocp.args.Composite(
            params=ocp.args.StandardSave(nnx.to_pure_dict(nnx.state(model, nnx.Param))),
            optimizer=ocp.args.StandardSave(nnx.to_pure_dict(nnx.state(optimizer))),
            progress=ocp.args.JsonSave(progress),
        ),
        force=True,
    )


def restore_target(tree: Any) -> Any:
    """Abstract arrays (shape, dtype, sharding) of `tree`: orbax restores each saved array straight
    into that layout, so a checkpoint written on one mesh shape restores onto another."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


def _restore_items(manager: ocp.CheckpointManager, step: int, items: dict[str, Any]) -> dict[str, Any]:
    path = Path(manager.directory) / str(step)
    try:
        restored = manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as err:  # orbax raises many types for damaged files
        raise CheckpointError(f"{path}: checkpoint is corrupt or does not match the config: {err}") from err
    return {name: restored[name] for name in items}


def restore_training_state(
    manager: ocp.CheckpointManager, model: nnx.Module, optimizer: nnx.Optimizer
) -> dict | None:
    """Load the latest checkpoint into `model` and `optimizer`; None if there is none."""
    step = manager.latest_step()
    if step is None:
        return None
    params_state = nnx.state(model, nnx.Param)
    opt_state = nnx.state(optimizer)
    restored = _restore_items(
        manager,
        step,
        {
            "params": ocp.args.StandardRestore(restore_target(nnx.to_pure_dict(params_state))),
            "optimizer": ocp.args.StandardRestore(restore_target(nnx.to_pure_dict(opt_state))),
            "progress": ocp.args.JsonRestore(),
        },
    )
    nnx.replace_by_pure_dict(params_state, restored["params"])
    nnx.replace_by_pure_dict(opt_state, restored["optimizer"])
    nnx.update(model, params_state)
    nnx.update(optimizer, opt_state)
    return restored["progress"]


def load_workdir_config(workdir: str | Path) -> PhoenixConfig:
    path = Path(workdir) / "config.toml"
    if not path.is_file():
        raise CheckpointError(f"{path}: no config in workdir (was `phoenix train` run here?)")
    try:
        return load_config(path)
    except ConfigError as err:
        raise CheckpointError(str(err)) from err


def write_workdir_config(config: PhoenixConfig, workdir: str | Path) -> None:
    """Record the config; refuse to resume a workdir trained with another model shape."""
    path = Path(workdir) / "config.toml"
    if path.is_file():
        previous = load_workdir_config(workdir)
        if previous.model != config.model:
            raise CheckpointError(f"{path}: workdir was trained with a different [model] config")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_config(config, path)


def write_run_data_dir(workdir: str | Path, data_dir: str | Path) -> None:
    """Record which world a workdir trains on, so eval and serving find it without flags."""
    (Path(workdir) / "run.json").write_text(json.dumps({"data_dir": str(Path(data_dir).absolute())}))


def read_run_data_dir(workdir: str | Path) -> Path:
    path = Path(workdir) / "run.json"
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; pass --data to name the world directory")
    try:
        return Path(json.loads(path.read_text())["data_dir"])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: unreadable run record: {err}") from err


def load_model(
    workdir: str | Path, step: int | None = None, compute_dtype: str | None = None
) -> tuple[PhoenixRanker, PhoenixConfig, int]:
    """Rebuild the ranker from a workdir's config and its latest (or given) checkpoint.

    `compute_dtype` overrides the trained compute dtype: "serving" picks the
    trained one on a CPU and bfloat16 on accelerators. Parameters stay float32
    either way; only activations and matmul inputs change, which is where
    accelerators are fast and where a CPU is not.
    """
    config = load_workdir_config(workdir)
    if compute_dtype == "serving":
        compute_dtype = config.model.compute_dtype if jax.default_backend() == "cpu" else "bfloat16"
    if compute_dtype is not None:
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, compute_dtype=compute_dtype))
    model = build_ranker(config.model)
    return model, config, restore_params(workdir, model, step)


def restore_params(directory: str | Path, model: nnx.Module, step: int | None = None) -> int:
    """Load parameters of `directory/checkpoints/<step>` (latest if None) into `model`; returns the step."""
    manager = checkpoint_manager(directory)
    step = manager.latest_step() if step is None else step
    if step is None:
        raise CheckpointError(f"{Path(directory) / 'checkpoints'}: no checkpoint found")
    params_state = nnx.state(model, nnx.Param)
    target = restore_target(nnx.to_pure_dict(params_state))
    restored = _restore_items(manager, step, {"params": ocp.args.StandardRestore(target)})
    nnx.replace_by_pure_dict(params_state, restored["params"])
    nnx.update(model, params_state)
    manager.close()
    return step

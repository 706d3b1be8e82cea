"""The workdir: what a trained model leaves behind, and how every job finds it again.

    WORKDIR/config.toml        the config it was trained with
    WORKDIR/run.json           the data directory it trains on
    WORKDIR/checkpoints/<s>/   orbax: parameters, optimizer state, progress (resume)
    WORKDIR/best/<s>/          orbax: the best validated parameters (evaluation, serving)
    WORKDIR/metrics.jsonl, training.png

Training, evaluation and serving all sit above this module; none of them
needs another to find a model. Orbax finalises a step atomically, so a job
killed mid-save leaves the previous step intact. Nothing is unpickled: arrays
come back through orbax's array handlers and progress through JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from phoenix.config import (
    DEFAULT_ACTIONS,
    ConfigError,
    ModelConfig,
    PhoenixConfig,
    load_config,
    replace,
    save_config,
)
from phoenix.data.checksums import ChecksumError, verify_checksums, write_checksums
from phoenix.data.dataset import METADATA_FILE, ImpressionLog, read_impressions, read_metadata
from phoenix.data.world.generator import generate_world
from phoenix.data.world.io import write_world
from phoenix.model.calibration import CALIBRATION_FILE, load_calibration
from phoenix.model.ranker import PhoenixRanker, build_ranker
from phoenix.parallel.distributed import is_main_process, process_shard, sync_processes

# Bumped when a change of the model's code moves or renames its parameters, or of what a checkpoint
# must carry (4: checksums and the config fields of MEANING_FIELDS): a checkpoint of another layout
# is refused with a message to retrain, never loaded into the wrong arrays.
CHECKPOINT_LAYOUT = 4


class CheckpointError(ValueError):
    """A workdir or checkpoint is missing or unreadable (names the path)."""


class DamagedCheckpoint(CheckpointError):
    """A checkpoint step whose files do not match the checksums written with it (or lack them)."""


# The config fields that give a checkpoint's arrays their meaning without changing their shapes:
# which head is which, how ids hash to rows. Recorded with every save; a mismatch is refused.
MEANING_FIELDS = ("actions", "num_hashes", "hash_seed", "user_buckets", "post_buckets", "author_buckets",
                  "num_surfaces", "user_ids", "author_ids", "sequence_match")
# And those that give them their shapes: a mismatch is named before orbax reports a shape.
SHAPE_FIELDS = ("embedding_dim", "model_dim", "num_layers", "num_q_heads", "num_kv_heads", "head_dim",
                "ffn_widening", "table_row_multiple")


def model_meaning(model: nnx.Module) -> dict | None:
    """The MEANING_FIELDS and SHAPE_FIELDS of a ranker's config (None for models without a ranker config)."""
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        return None
    return {f: list(v) if isinstance(v, tuple) else v for f, v in
            ((f, getattr(config, f)) for f in (*MEANING_FIELDS, *SHAPE_FIELDS))}


def verify_step(step_dir: Path) -> None:
    """DamagedCheckpoint naming the first file of a step that differs from the checksums written with it."""
    try:
        verify_checksums(step_dir)
    except ChecksumError as err:
        raise DamagedCheckpoint(f"{err}; the checkpoint is damaged") from err


def checkpoint_manager(workdir: str | Path, keep: int = 2, save_every: int = 1) -> ocp.CheckpointManager:
    """The resumable training state: parameters, optimizer and progress under `checkpoints/`."""
    directory = (Path(workdir) / "checkpoints").absolute()
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=save_every, create=True)
    return ocp.CheckpointManager(directory, options=options, item_names=("params", "optimizer", "progress"))


def best_manager(workdir: str | Path, create: bool = True) -> ocp.CheckpointManager:
    """The best validated parameters (one step) under `best/`."""
    directory = (Path(workdir) / "best").absolute()
    options = ocp.CheckpointManagerOptions(max_to_keep=1, create=create)
    return ocp.CheckpointManager(directory, options=options, item_names=("params", "progress"))


def restore_best(manager: ocp.CheckpointManager, model: nnx.Module) -> int:
    """Load the best validated parameters into `model`; returns their step."""
    step = manager.latest_step()
    if step is None:
        raise CheckpointError(f"{manager.directory}: no checkpoint found")
    _restore_params(manager, step, model)
    return step


def save_checkpoint(
    manager: ocp.CheckpointManager, step: int, model: nnx.Module, optimizer: nnx.Optimizer | None, progress: dict
) -> None:
    """Parameters, the optimizer state (training checkpoints; None for `best/`) and progress, with the
    layout and the config fields that give the arrays their meaning; then checksums of every file.

    Non-finite parameters are never saved, so retention can never replace the last good step with
    a broken one.
    """
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    for path, value in jax.tree_util.tree_flatten_with_path(params)[0]:
        if not np.all(np.isfinite(np.asarray(value))):
            name = "/".join(str(getattr(k, "key", k)) for k in path)
            raise FloatingPointError(f"step {step}: parameter {name} is not finite; not saving a checkpoint of it")
    items = {
        "params": ocp.args.StandardSave(params),
        "progress": ocp.args.JsonSave({**progress, "layout": CHECKPOINT_LAYOUT, "model": model_meaning(model)}),
    }
    if optimizer is not None:
        items["optimizer"] = ocp.args.StandardSave(nnx.to_pure_dict(nnx.state(optimizer)))
    if step in manager.all_steps():  # written by a killed run of this job, which the rerun is replaying
        manager.delete(step)
    manager.save(step, args=ocp.args.Composite(**items), force=True)
    manager.wait_until_finished()
    sync_processes(f"phoenix-checkpoint-{step}")  # every process's shards are on disk
    if is_main_process():
        write_checksums(Path(manager.directory) / str(step))


def restore_target(tree: Any) -> Any:
    """Abstract arrays (shape, dtype, sharding) of `tree`: orbax restores each saved array straight
    into that layout, so a checkpoint written on one mesh shape restores onto another."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


def _restore_items(
    manager: ocp.CheckpointManager, step: int, arrays: dict[str, Any], meaning: dict | None = None
) -> dict[str, Any]:
    """The step's progress and the array items `arrays` asks for.

    The progress is read first, so a checkpoint written with another parameter
    layout is refused with what to do; then the files are checked against their
    checksums (DamagedCheckpoint otherwise), and a checkpoint trained for heads
    or hashing other than `meaning`'s is refused naming the field, all before
    any array is touched.
    """
    path = Path(manager.directory) / str(step)
    try:
        progress = manager.restore(step, args=ocp.args.Composite(progress=ocp.args.JsonRestore()))["progress"]
    except Exception as err:  # orbax raises many types for damaged files
        verify_step(path)  # names the damaged file when it can
        raise DamagedCheckpoint(f"{path}: checkpoint is corrupt or unreadable: {err}") from err
    layout = progress.get("layout", 1) if isinstance(progress, dict) else None
    if layout != CHECKPOINT_LAYOUT:
        raise CheckpointError(
            f"{path}: written with parameter layout {layout}, this Phoenix reads layout {CHECKPOINT_LAYOUT} "
            "(the model's parameters were reorganised); retrain with `phoenix train`"
        )
    verify_step(path)
    recorded = progress.get("model")
    if meaning is not None and recorded is not None:
        for field in (*MEANING_FIELDS, *SHAPE_FIELDS):
            if recorded.get(field) != meaning.get(field):
                raise CheckpointError(
                    f"{path}: trained with model.{field} = {recorded.get(field)!r}, but the config says "
                    f"{meaning.get(field)!r}; its arrays would not mean (or fit) what this config says "
                    "(restore that config.toml)"
                )
    try:
        restored = manager.restore(step, args=ocp.args.Composite(**arrays))
    except Exception as err:  # orbax raises many types for damaged files
        raise CheckpointError(f"{path}: checkpoint is corrupt or does not match the config: {err}") from err
    return {"progress": progress, **{name: restored[name] for name in arrays}}


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def newest_intact(manager: ocp.CheckpointManager, restore: Callable[[int], Any]) -> tuple[Any, list[int]]:
    """(`restore(step)` of the newest step that is not damaged, or None when there are no steps; the
    damaged steps skipped, each named on stderr). If every step is damaged, a CheckpointError lists them."""
    damaged, reasons = [], []
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            return restore(step), damaged
        except DamagedCheckpoint as err:
            _warn(f"skipping a damaged checkpoint: {err}")
            damaged.append(step)
            reasons.append(str(err))
    if damaged:
        raise CheckpointError(f"{manager.directory}: every checkpoint is damaged ({'; '.join(reasons)})")
    return None, []


def restore_training_state(
    manager: ocp.CheckpointManager, model: nnx.Module, optimizer: nnx.Optimizer
) -> dict | None:
    """Load the newest intact checkpoint into `model` and `optimizer`; None if there is none."""
    params_state = nnx.state(model, nnx.Param)
    opt_state = nnx.state(optimizer)
    targets = {
        "params": ocp.args.StandardRestore(restore_target(nnx.to_pure_dict(params_state))),
        "optimizer": ocp.args.StandardRestore(restore_target(nnx.to_pure_dict(opt_state))),
    }
    restored, damaged = newest_intact(manager, lambda s: _restore_items(manager, s, targets, model_meaning(model)))
    for step in damaged if is_main_process() else ():  # kept for inspection, out of the way of later saves
        aside = Path(manager.directory).parent / "damaged" / f"checkpoint-{step}-{time.time_ns()}"
        aside.parent.mkdir(exist_ok=True)
        os.replace(Path(manager.directory) / str(step), aside)
        _warn(f"moved the damaged step {step} to {aside}")
    if damaged:
        sync_processes("phoenix-damaged-moved")
        manager.reload()
    if restored is None:
        return None
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
        hint = " (a config recorded by an older Phoenix layout: retrain with `phoenix train`)"
        raise CheckpointError(str(err) + (hint if "unknown key" in str(err) else "")) from err


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
    """Rebuild the ranker from a workdir's config and the step it serves (see `restore_params`).

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
    served = restore_params(workdir, model, step)
    load_calibration(model, Path(workdir) / CALIBRATION_FILE, served)
    return model, config, served


def restore_params(directory: str | Path, model: nnx.Module, step: int | None = None) -> int:
    """Load the model a workdir serves into `model`; returns its step.

    That is the best validated step (`best/`) when training validated, else the
    latest training checkpoint; `step` picks a training checkpoint instead.
    """
    directory = Path(directory)
    if step is None and (directory / "best").is_dir():
        manager = best_manager(directory, create=False)
        try:
            if manager.latest_step() is not None:
                return restore_best(manager, model)
        except DamagedCheckpoint as err:  # fall back to the newest intact training checkpoint
            _warn(f"not serving the best checkpoint: {err}")
        finally:
            manager.close()
    if not (directory / "checkpoints").is_dir():
        raise CheckpointError(f"{directory / 'checkpoints'}: no checkpoint found")
    manager = checkpoint_manager(directory)
    try:
        if step is not None:
            _restore_params(manager, step, model)
            return step
        found, _ = newest_intact(manager, lambda s: _restore_params(manager, s, model) or s)
    finally:
        manager.close()
    if found is None:
        raise CheckpointError(f"{directory / 'checkpoints'}: no checkpoint found")
    return found


def _restore_params(manager: ocp.CheckpointManager, step: int, model: nnx.Module) -> None:
    params_state = nnx.state(model, nnx.Param)
    target = restore_target(nnx.to_pure_dict(params_state))
    restored = _restore_items(manager, step, {"params": ocp.args.StandardRestore(target)}, model_meaning(model))
    nnx.replace_by_pure_dict(params_state, restored["params"])
    nnx.update(model, params_state)


def ensure_world(config: PhoenixConfig, data_dir: str | Path) -> Path:
    """Generate the config's world into `data_dir` unless one is already there."""
    data_dir = Path(data_dir)
    if not (data_dir / METADATA_FILE).is_file():
        write_world(generate_world(config.world, config.model.actions), data_dir)
    elif read_metadata(data_dir).get("config") != dataclasses.asdict(config.world):
        raise ValueError(f"{data_dir / METADATA_FILE}: this world was generated from another [world] config")
    return data_dir


def dataset_config(config: PhoenixConfig, actions: tuple[str, ...], data_dir: Path) -> PhoenixConfig:
    """The config a job on this dataset runs with: its heads are the dataset's actions.

    A config that leaves `model.actions` at the default takes the dataset's
    (a log with three actions trains three heads); a config that lists its own
    must match them.
    """
    if config.model.actions == actions:
        return config
    if config.model.actions != DEFAULT_ACTIONS:
        raise ValueError(
            f"{data_dir}: the dataset's actions {list(actions)} differ from model.actions "
            f"{list(config.model.actions)}; list the dataset's actions there, or leave model.actions out"
        )
    return replace(config, model={"actions": list(actions)})


def prepare_run(
    config: PhoenixConfig, workdir: str | Path, data_dir: str | Path | None = None
) -> tuple[PhoenixConfig, Path, Path, ImpressionLog]:
    """What every training job on impressions does first: the config it runs with (heads from the
    dataset), the absolute workdir with that config recorded, the dataset it trains on, and this
    process's share of the dataset's impressions.

    The dataset is `data_dir` if given, else the one the workdir already trains on (so a resumed
    job keeps its data), else a world generated from the config in WORKDIR/world.
    """
    workdir = Path(workdir).absolute()
    if data_dir is None:
        try:
            data_dir = read_run_data_dir(workdir)
        except CheckpointError:
            data_dir = workdir / "world"
    data_dir = Path(data_dir).absolute()
    if is_main_process() and data_dir == workdir / "world":  # one writer; the others wait below
        ensure_world(config, data_dir)
    sync_processes("phoenix-prepare-data")
    config = dataset_config(config, tuple(read_metadata(data_dir)["actions"]), data_dir)
    if is_main_process():
        workdir.mkdir(parents=True, exist_ok=True)
        write_workdir_config(config, workdir)
        write_run_data_dir(workdir, data_dir)
    sync_processes("phoenix-prepare-run")
    return config, workdir, data_dir, read_impressions(data_dir, user_shard=process_shard())

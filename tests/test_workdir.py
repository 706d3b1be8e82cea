"""The workdir: a checkpoint of another parameter layout, or a config of an older one, is refused
with a message to retrain; a damaged step is named and skipped; a config that changes what the
arrays mean is refused; non-finite parameters are never saved."""

from __future__ import annotations

import shutil

import jax
import orbax.checkpoint as ocp
import pytest
from flax import nnx
from helpers import MICRO_CONFIG, SMALL_MODEL

from phoenix.config import PhoenixConfig, replace, save_config
from phoenix.data.checksums import CHECKSUM_FILE
from phoenix.model.ranker import build_ranker
from phoenix.training.ranker_loss import ranker_loss
from phoenix.training.trainer import Trainer
from phoenix.workdir import (
    CheckpointError,
    checkpoint_manager,
    load_model,
    load_workdir_config,
    restore_params,
    restore_training_state,
    save_checkpoint,
)


def test_a_checkpoint_of_the_old_layout_is_refused_with_a_message_to_retrain(tmp_path):
    model = build_ranker(SMALL_MODEL)
    manager = checkpoint_manager(tmp_path)
    params = ocp.args.StandardSave(nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    manager.save(3, args=ocp.args.Composite(params=params, progress=ocp.args.JsonSave({"step": 3})))
    manager.wait_until_finished()
    manager.close()
    with pytest.raises(CheckpointError, match=r"checkpoints/3: written with parameter layout 1, .*retrain"):
        restore_params(tmp_path, build_ranker(SMALL_MODEL))


def test_a_workdir_without_checkpoints_is_named_and_left_as_it_was(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoints: no checkpoint found"):
        restore_params(tmp_path, build_ranker(SMALL_MODEL))
    assert not (tmp_path / "checkpoints").exists()


def test_a_config_recorded_by_the_old_layout_says_to_retrain(tmp_path):
    save_config(PhoenixConfig(), tmp_path / "config.toml")
    text = (tmp_path / "config.toml").read_text().replace("[train]\n", "[train]\npost_id_dropout = 0.5\n")
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(CheckpointError, match=r"train.post_id_dropout: unknown key.*retrain"):
        load_workdir_config(tmp_path)


@pytest.fixture()
def workdir_copy(trained_workdir, tmp_path):
    copy = tmp_path / "workdir"
    shutil.copytree(trained_workdir, copy)
    return copy


def flip_bytes(step_dir, count=256):
    """Flip bytes in the middle of the largest file of a checkpoint step (where the arrays are)."""
    target = max((p for p in step_dir.rglob("*") if p.is_file() and p.name != CHECKSUM_FILE),
                 key=lambda p: p.stat().st_size)
    data = bytearray(target.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + count, len(data))):
        data[i] ^= 0xFF
    target.write_bytes(bytes(data))


def test_a_damaged_step_is_named_and_skipped_for_the_newest_intact_one(workdir_copy, capsys):
    steps = sorted(int(p.name) for p in (workdir_copy / "checkpoints").iterdir() if p.name.isdigit())
    assert len(steps) == 2
    flip_bytes(workdir_copy / "checkpoints" / str(steps[-1]))
    model = build_ranker(load_workdir_config(workdir_copy).model)
    assert restore_params(workdir_copy, model, step=None) in steps  # best/ is intact: served
    (best_step,) = [int(p.name) for p in (workdir_copy / "best").iterdir() if p.name.isdigit()]
    flip_bytes(workdir_copy / "best" / str(best_step))
    assert restore_params(workdir_copy, model) == steps[0]  # best damaged, newest training step damaged
    err = capsys.readouterr().err
    assert f"best/{best_step}" in err and f"checkpoints/{steps[-1]}" in err and "damaged" in err
    manager = checkpoint_manager(workdir_copy)
    optimizer = Trainer("t", lambda: model, ranker_loss, MICRO_CONFIG.train, MICRO_CONFIG.mesh).objects()[1]
    progress = restore_training_state(manager, model, optimizer)  # resume: from the intact step ...
    assert progress["step"] == steps[0] and manager.all_steps() == [steps[0]]  # ... the damaged one moved aside
    assert list((workdir_copy / "damaged").iterdir())
    manager.close()


def test_a_step_without_its_checksums_is_not_trusted(workdir_copy):
    for step_dir in (workdir_copy / "checkpoints").iterdir():
        (step_dir / CHECKSUM_FILE).unlink()
    shutil.rmtree(workdir_copy / "best")
    with pytest.raises(CheckpointError, match="every checkpoint is damaged .*no checksums"):
        restore_params(workdir_copy, build_ranker(load_workdir_config(workdir_copy).model))


@pytest.mark.parametrize("field, change", [
    ("actions", lambda m: {"actions": list(reversed(m.actions))}),
    ("hash_seed", lambda m: {"hash_seed": m.hash_seed + 1}),
    ("post_buckets", lambda m: {"post_buckets": m.post_buckets - 2}),  # the same padded table size
    ("model_dim", lambda m: {"model_dim": m.model_dim * 2}),  # named, not left to orbax's shape error
])
def test_a_checkpoint_refuses_a_config_that_changes_what_its_arrays_mean(workdir_copy, field, change):
    config = load_workdir_config(workdir_copy)
    edited = replace(config, model=change(config.model))
    assert edited.model.table_rows(edited.model.post_buckets) == config.model.table_rows(config.model.post_buckets)
    save_config(edited, workdir_copy / "config.toml")
    with pytest.raises(CheckpointError, match=f"trained with model.{field} = .*but the config says"):
        load_model(workdir_copy)


def test_non_finite_parameters_are_never_saved_over_the_last_good_checkpoint(workdir_copy):
    model, config, _ = load_model(workdir_copy)
    manager = checkpoint_manager(workdir_copy, keep=1)
    before = manager.all_steps()
    params = nnx.state(model, nnx.Param)
    leaves, tree = jax.tree.flatten(params)
    leaves[0] = leaves[0].at[0].set(float("nan"))
    nnx.update(model, jax.tree.unflatten(tree, leaves))
    with pytest.raises(FloatingPointError, match="is not finite; not saving"):
        save_checkpoint(manager, 99_999, model, None, {"step": 99_999})
    assert manager.all_steps() == before  # retention had nothing new to make room for
    manager.close()

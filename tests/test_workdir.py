"""The workdir: a checkpoint of another parameter layout, or a config of an older one, is refused
with a message to retrain, never loaded into the wrong arrays."""

from __future__ import annotations

import orbax.checkpoint as ocp
import pytest
from flax import nnx
from helpers import SMALL_MODEL

from phoenix.config import PhoenixConfig, save_config
from phoenix.model.ranker import build_ranker
from phoenix.workdir import CheckpointError, checkpoint_manager, load_workdir_config, restore_params


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

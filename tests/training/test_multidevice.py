"""Sharded training on 8 simulated CPU devices against the same job on one device."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from multidevice_runs import SCHEDULE, config_on, losses, probe_batch

from phoenix.training.ranker import train_and_evaluate
from phoenix.workdir import load_model

SCRIPT = Path(__file__).with_name("multidevice_runs.py")


def run_on_8_devices(mode: str, world: Path, out: Path) -> dict:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, str(SCRIPT), mode, str(world), str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory, micro_world) -> Path:
    workdir = tmp_path_factory.mktemp("one-device")
    train_and_evaluate(config_on({}), workdir, micro_world, progress=False)
    return workdir


@pytest.mark.slow  # about a minute on 2 cores: it trains on three meshes
def test_meshes_8x1_4x2_2x4_follow_the_one_device_loss_curve(tmp_path, micro_world, one_device_run):
    reference = losses(one_device_run)
    assert len(reference) == SCHEDULE["num_steps"] and reference[-1] < reference[0]
    report = run_on_8_devices("curves", micro_world, tmp_path)
    assert set(report) == {"8x1", "4x2", "2x4", "2x4-sharded-transformer"}
    for name, curve in report.items():
        np.testing.assert_allclose(curve, reference, rtol=2e-5, err_msg=name)


@pytest.mark.slow  # two trainings on emulated meshes: about 40 s
def test_checkpoint_moves_from_4x2_to_2x4_and_to_one_device(tmp_path, micro_world, one_device_run):
    report = run_on_8_devices("restore", micro_world, tmp_path)
    # Killed after 3 steps on 4x2 and resumed on 2x4: the same 6 steps as one uninterrupted device.
    assert report["step"] == SCHEDULE["num_steps"]
    np.testing.assert_allclose(report["losses"], losses(one_device_run), rtol=2e-5)
    # On 2x4 the post table really is split: 4 devices' blocks of rows, one device holds a quarter.
    assert report["table_devices"] == 8 and report["table_shard_rows"] * 4 == report["table_rows"]
    assert report["single_devices"] == 1
    logits = np.load(tmp_path / "logits.npz")
    np.testing.assert_allclose(logits["mesh"], logits["one"], rtol=1e-6, atol=1e-6)
    # ... and in this process (one real device) the checkpoint gives the same logits.
    model, _, _ = load_model(tmp_path / "moved")
    here = np.asarray(model(probe_batch(micro_world)))
    np.testing.assert_allclose(here, logits["mesh"], rtol=1e-6, atol=1e-6)
    straight, _, _ = load_model(one_device_run)
    np.testing.assert_allclose(here, np.asarray(straight(probe_batch(micro_world))), rtol=1e-4, atol=1e-5)

"""A real two-process job on JAX's distributed runtime (CPU, Gloo collectives): 2 hosts x 4 devices."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from multidevice_runs import SCHEDULE, config_on, probe_batch

from phoenix.config import save_config
from phoenix.workdir import load_model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two JAX processes start and train: about 45 s
def test_two_processes_train_one_sharded_model_and_checkpoint_it(tmp_path, micro_world):
    config_path = tmp_path / "config.toml"
    save_config(config_on({"data": 4, "model": 2}), config_path)
    workdir = tmp_path / "workdir"
    port = free_port()
    procs = []
    for process_id in range(2):
        env = dict(
            os.environ,
            JAX_PLATFORMS="cpu",
            XLA_FLAGS="--xla_force_host_platform_device_count=4",
            JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
            JAX_NUM_PROCESSES="2",
            JAX_PROCESS_ID=str(process_id),
        )
        command = [sys.executable, "-m", "phoenix.cli", "train", "--config", str(config_path),
                   "--workdir", str(workdir), "--data", str(micro_world)]
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outputs = [p.communicate(timeout=600) for p in procs]
    finally:  # a hung peer (e.g. the other process failed to start) must not outlive the test
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-4000:]
    # Only process 0 reports and writes the metrics log; both took part in every step.
    reports = [[line for line in out.splitlines() if line.startswith("{")] for out, _ in outputs]
    assert json.loads(reports[0][-1])["workdir"] == str(workdir)
    assert reports[1] == []
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == SCHEDULE["num_steps"] and losses[-1] < losses[0]
    # The checkpoint both hosts wrote (4x2 over 8 devices) restores here, on one device.
    model, _, step = load_model(workdir)
    assert step == SCHEDULE["num_steps"]
    logits = np.asarray(model(probe_batch(micro_world)))
    assert logits.shape == (8, 16, config_on({}).model.num_actions) and np.isfinite(logits).all()

"""Run by tests/training/test_multidevice.py in a subprocess with 8 simulated CPU devices.

    python multidevice_runs.py curves WORLD OUT     train 6 steps on meshes 8x1, 4x2, 2x4 (+ sharded
                                                    transformer); write each loss curve
    python multidevice_runs.py restore WORLD OUT    train on 4x2, kill after 3 steps, resume on 2x4 to 6;
                                                    write logits of the checkpoint restored on 2x4 and on
                                                    one device

XLA_FLAGS must give 8 host devices before JAX starts, which is why this is a
separate process and not a fixture.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import numpy as np
from flax import nnx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import MICRO_CONFIG  # noqa: E402

from phoenix.config import replace  # noqa: E402
from phoenix.data.batch import featurize  # noqa: E402
from phoenix.data.dataset import read_impressions  # noqa: E402
from phoenix.data.packing import pack_examples  # noqa: E402
from phoenix.model.calibration import CALIBRATION_FILE, load_calibration  # noqa: E402
from phoenix.training.ranker import ranker_trainer, train_and_evaluate  # noqa: E402
from phoenix.workdir import checkpoint_manager, load_model, restore_training_state  # noqa: E402

SCHEDULE = {"num_steps": 6, "warmup_steps": 1, "log_every": 1, "eval_every": 6, "checkpoint_every": 3,
            "eval_examples": 64, "batch_size": 16}
LAYOUTS = {
    "8x1": {"data": 8, "model": 1},
    "4x2": {"data": 4, "model": 2},
    "2x4": {"data": 2, "model": 4},
    "2x4-sharded-transformer": {"data": 2, "model": 4, "shard_transformer": True},
}


def config_on(mesh: dict):
    return replace(MICRO_CONFIG, train=SCHEDULE, mesh=mesh)


def losses(workdir: Path) -> list[float]:
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


def probe_batch(world: Path):
    examples = pack_examples(read_impressions(world), "valid", 16, 16).take(np.arange(8))
    return featurize(examples.request, MICRO_CONFIG.model)


def curves(world: Path, out: Path) -> dict:
    result = {}
    for name, mesh in LAYOUTS.items():
        train_and_evaluate(config_on(mesh), out / name, world, progress=False)
        result[name] = losses(out / name)
    return result


def restore(world: Path, out: Path) -> dict:
    workdir = out / "moved"
    train_and_evaluate(config_on(LAYOUTS["4x2"]), workdir, world, progress=False, max_steps=3)  # "killed"
    train_and_evaluate(config_on(LAYOUTS["2x4"]), workdir, world, progress=False)  # resumed elsewhere
    batch = probe_batch(world)

    trainer = ranker_trainer(config_on(LAYOUTS["2x4"]), num_examples=1)
    mesh = trainer.mesh
    model, optimizer = trainer.objects()
    step = restore_training_state(checkpoint_manager(workdir), model, optimizer)["step"]
    assert load_calibration(model, workdir / CALIBRATION_FILE, step)  # as load_model does for the step it serves
    table = model.encoder.post_embed.table.embedding.value
    with jax.set_mesh(mesh):
        on_mesh = nnx.jit(lambda m, b: m(b))(model, batch)
    single, _, _ = load_model(workdir)
    on_one = nnx.jit(lambda m, b: m(b))(single, batch)
    np.savez(out / "logits.npz", mesh=np.asarray(on_mesh), one=np.asarray(on_one))
    return {
        "step": step,
        "losses": losses(workdir),
        "table_devices": len(table.sharding.device_set),
        "table_shard_rows": table.addressable_shards[0].data.shape[0],
        "table_rows": table.shape[0],
        "single_devices": len(single.encoder.post_embed.table.embedding.value.sharding.device_set),
    }


if __name__ == "__main__":
    mode, world, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    assert jax.device_count() == 8, jax.devices()
    report = {"curves": curves, "restore": restore}[mode](world, out)
    (out / "report.json").write_text(json.dumps(report))

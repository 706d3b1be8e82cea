"""Training throughput of the ranker on this machine's devices: examples/s and model FLOPs utilisation.

Runs the real sharded training step (`Trainer`: the jit with explicit
shardings that `phoenix train` runs) on synthetic packed examples of the
config's shapes (full histories, every candidate slot used), on the `[mesh]`
of the config or `--mesh DATAxMODEL`, and prints JSON lines:

* `roofline`: the float32 (and on accelerators bfloat16) matmul rate measured
  now, the baseline every ratio below is taken against;
* `train_step`: its ratio to two baselines measured in this run: the same
  sharded step through the full-sequence reference (`full_sequence`: one
  attention over all 1 + H + C tokens, the ranker's training step before it
  trained on the prefix path), and the plain single-device `nnx.jit` step (the
  same update without a mesh: what the sharding machinery costs or gains);
  compile seconds, median step ms, examples/s and candidate impressions/s, the
  model FLOPs per step with the formula used, the achieved FLOP/s, its
  fraction of the measured matmul rate (`of_matmul_roofline`) and, where the
  device's peak is known (GPU, TPU, or this CPU's 380 GFLOP/s), the model
  FLOPs utilisation `mfu` = model FLOP/s / (devices x peak FLOP/s).

Model FLOPs count the matmuls the prefix path performs, forward x 3 for
training (backward = 2 x forward): user + history attend causally over
S = 1 + H keys (counted in full, whatever the causal mask makes useless), and
each candidate over S + 1. The full-sequence baseline's own fraction is
reported on the same FLOPs, so the two fractions compare the same work.

    python bench/train_throughput.py [--config configs/base.toml] [--mesh 0x1] [--steps 20]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np
from flax import nnx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.roofline import matmul_rate  # noqa: E402
from phoenix.config import CONFIG_DIR, ModelConfig, load_config, replace  # noqa: E402
from phoenix.config.mesh import mesh_flag  # noqa: E402
from phoenix.data.batch import RequestBatch, featurize  # noqa: E402
from phoenix.model.ranker import build_ranker  # noqa: E402
from phoenix.training.loader import sharded_batches  # noqa: E402
from phoenix.training.optimizer import make_optimizer  # noqa: E402
from phoenix.training.ranker import ranker_trainer  # noqa: E402
from phoenix.training.ranker_loss import ranker_loss  # noqa: E402
from phoenix.training.trainer import Trainer  # noqa: E402

# Dense peak FLOP/s per device by (device kind prefix, compute dtype); CPU: this machine's figure.
PEAK_FLOPS = {
    ("NVIDIA H100", "bfloat16"): 989e12, ("NVIDIA H100", "float32"): 67e12,
    ("NVIDIA H200", "bfloat16"): 989e12, ("NVIDIA H200", "float32"): 67e12,
    ("NVIDIA A100", "bfloat16"): 312e12, ("NVIDIA A100", "float32"): 19.5e12,
    ("TPU v4", "bfloat16"): 275e12, ("TPU v5 lite", "bfloat16"): 197e12, ("TPU v5p", "bfloat16"): 459e12,
    ("cpu", "float32"): 380e9,
}

FORMULA = (
    "3 x B x [ per layer: T x 2D((Hq+2G)Dh + Hq Dh + 3F) + 4 Hq Dh (S^2 + C (S+1)) ; "
    "projections: 2KE D + H 2(2KE+2E) D + C 2(2KE+E) D + C 2 D A ], S = 1+H, T = S+C"
)


def model_flops_per_example(m: ModelConfig) -> float:
    """Training FLOPs of one packed example (see FORMULA)."""
    h, c, d, dh = m.history_len, m.num_candidates, m.model_dim, m.head_dim
    ke, e, s = m.num_hashes * m.embedding_dim, m.embedding_dim, 1 + m.history_len
    t = s + c
    dense = 2 * d * ((m.num_q_heads + 2 * m.num_kv_heads) * dh + m.num_q_heads * dh + 3 * m.ffn_dim)
    attention = 4 * m.num_q_heads * dh * (s * s + c * (s + 1))
    layers = m.num_layers * (t * dense + attention)
    projections = 2 * ke * d + h * 2 * (2 * ke + 2 * e) * d + c * 2 * (2 * ke + e) * d + c * 2 * d * m.num_actions
    return 3.0 * (layers + projections)


def synthetic_examples(m: ModelConfig, n: int, seed: int = 0):
    """n packed examples with full histories and every candidate slot used; labels at ~5%."""
    rng = np.random.default_rng(seed)
    h, c = m.history_len, m.num_candidates
    request = RequestBatch(
        user_id=rng.integers(1, 10**6, n),
        history_post_id=rng.integers(1, 10**7, (n, h)),
        history_author_id=rng.integers(1, 10**5, (n, h)),
        history_actions=(rng.random((n, h, m.num_actions)) < 0.1).astype(np.int8),
        history_surface=rng.integers(0, 6, (n, h)),
        candidate_post_id=rng.integers(1, 10**7, (n, c)),
        candidate_author_id=rng.integers(1, 10**5, (n, c)),
        candidate_surface=rng.integers(0, 6, (n, c)),
        candidate_cutoff=np.sort(rng.integers(0, h + 1, (n, c)), axis=1).astype(np.int32),
    )
    return featurize(request, m), (rng.random((n, c, m.num_actions)) < 0.05).astype(np.int8)


def peak_flops(device: jax.Device, dtype: str) -> float | None:
    kind = "cpu" if device.platform == "cpu" else device.device_kind
    return next((v for (prefix, dt), v in PEAK_FLOPS.items() if kind.startswith(prefix) and dt == dtype), None)


def median_seconds(call, steps: int) -> float:
    call()  # compile
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def unsharded_step_seconds(config, features, labels, steps: int) -> float:
    """The baseline: the same update as a plain `nnx.jit` on the default device."""
    model = build_ranker(config.model, seed=config.train.seed)
    optimizer = make_optimizer(model, config.train, config.train.num_steps)
    rows = np.arange(config.train.batch_size) % len(labels)
    batch, y, key = features.take(rows), labels[rows], jax.random.key(0)

    @nnx.jit
    def train_step(model, optimizer, batch, y, key):
        loss, grads = nnx.value_and_grad(lambda m: ranker_loss(m, (batch, y), None, key))(model)
        optimizer.update(model, grads)
        return loss

    return median_seconds(lambda: train_step(model, optimizer, batch, y, key).block_until_ready(), steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(CONFIG_DIR / "base.toml"))
    parser.add_argument("--mesh", help="DATAxMODEL, overriding [mesh]")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, help="global batch (default: train.batch_size)")
    args = parser.parse_args()

    config = load_config(args.config)
    if args.mesh:
        config = replace(config, mesh=mesh_flag(args.mesh))
    if args.batch_size:
        config = replace(config, train={"batch_size": args.batch_size})
    m, batch_size = config.model, config.train.batch_size
    dtypes = ["float32"] + (["bfloat16"] if jax.default_backend() != "cpu" else [])
    before = {dt: matmul_rate(dt) for dt in dtypes}
    for dt in dtypes:
        print(json.dumps({**before[dt], "backend": jax.default_backend(), "devices": jax.device_count()}), flush=True)

    local = batch_size // jax.process_count()
    features, labels = synthetic_examples(m, 4 * local, seed=jax.process_index())
    trainer = ranker_trainer(config, 4 * local)
    full = Trainer("full_sequence", lambda: build_ranker(m, seed=config.train.seed),
                   functools.partial(ranker_loss, full_sequence=True), config.train, config.mesh)
    mesh = trainer.mesh
    loader = sharded_batches(lambda rows: ((features.take(rows), labels[rows]), None), 4 * local, batch_size, 0,
                             mesh)(0, args.steps + 1)
    key = jax.random.key(0)
    # The two steps alternate on the same batches, so a slower minute of a shared machine slows both.
    times = {"prefix": [], "full": []}
    compile_s = 0.0
    for step, (examples, shared) in loader:
        for name, each in (("prefix", trainer), ("full", full)):
            start = time.perf_counter()
            each.step(examples, shared, key).block_until_ready()
            if step > 0:
                times[name].append(time.perf_counter() - start)
            elif name == "prefix":
                compile_s = time.perf_counter() - start  # first call: tracing + XLA compile + one step
    step_s, full_s = float(np.median(times["prefix"])), float(np.median(times["full"]))
    baseline_s = unsharded_step_seconds(config, features, labels, args.steps) if jax.process_count() == 1 else None
    # The matmul rate again after the steps: the larger of the two is the roofline (the conservative ratio).
    dt = m.compute_dtype if m.compute_dtype in dtypes else "float32"
    rate_before, rate_after = before[dt]["gflops"], matmul_rate(dt)["gflops"]
    matmul = max(rate_before, rate_after) * 1e9
    flops = model_flops_per_example(m) * batch_size
    achieved = flops / step_s
    peak = peak_flops(jax.devices()[0], m.compute_dtype)
    print(json.dumps({
        "bench": "train_step",
        "config": Path(args.config).name,
        "mesh": dict(mesh.shape),
        "device_kind": jax.devices()[0].device_kind,
        "compute_dtype": m.compute_dtype,
        "batch_size": batch_size,
        "candidates_per_example": m.num_candidates,
        "full_sequence_step_ms_median": round(full_s * 1e3, 2),
        "speed_vs_full_sequence_step": round(full_s / step_s, 3),
        "full_sequence_of_matmul_roofline": round(flops / full_s / (matmul * jax.local_device_count()), 4),
        "matmul_gflops_before_after": [round(rate_before, 1), round(rate_after, 1)],
        "unsharded_step_ms_median": None if baseline_s is None else round(baseline_s * 1e3, 2),
        "speed_vs_unsharded_step": None if baseline_s is None else round(baseline_s / step_s, 3),
        "compile_s": round(compile_s, 2),
        "step_ms_median": round(step_s * 1e3, 2),
        "examples_per_s": round(batch_size / step_s, 1),
        "candidates_per_s": round(batch_size * m.num_candidates / step_s, 1),
        "model_gflop_per_step": round(flops / 1e9, 3),
        "model_flops_formula": FORMULA,
        "achieved_gflops": round(achieved / 1e9, 2),
        "of_matmul_roofline": round(achieved / (matmul * jax.local_device_count()), 4),
        "mfu": None if peak is None else round(achieved / (peak * jax.device_count()), 4),
        "peak_gflops_per_device": None if peak is None else peak / 1e9,
    }), flush=True)


if __name__ == "__main__":
    main()

"""Latency of scoring one request: full-sequence path vs the cached-prefix path.

Base config (D 128, 4 layers, history 128), one user, 32 / 256 / 1,500 / 5,000
candidates, float32 on the CPU, model with its embedding lookups. One JSON line
per (path, candidates): ms median and p99 over >= 30 runs (compile reported
apart), the XLA-counted GFLOP per call, the fraction of the matmul roofline
measured in the same run, and the prefix path's speedup over the full path.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np
from flax import nnx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.roofline import matmul_rate  # noqa: E402
from phoenix.config import CONFIG_DIR, load_config  # noqa: E402
from phoenix.model.batch import RequestBatch, featurize  # noqa: E402
from phoenix.model.ranker import build_ranker  # noqa: E402


def request(config, candidates: int, rng: np.random.Generator) -> RequestBatch:
    h = config.history_len
    return RequestBatch(
        user_id=np.array([7]),
        history_post_id=rng.integers(1, 10**9, (1, h)),
        history_author_id=rng.integers(1, 10**6, (1, h)),
        history_actions=(rng.random((1, h, config.num_actions)) < 0.2).astype(np.int8),
        history_surface=rng.integers(0, 6, (1, h)),
        candidate_post_id=rng.integers(1, 10**9, (1, candidates)),
        candidate_author_id=rng.integers(1, 10**6, (1, candidates)),
        candidate_surface=np.zeros((1, candidates), np.int64),
        candidate_cutoff=np.full((1, candidates), h),
    )


def measure(fn, model, batch, runs: int) -> dict:
    start = time.perf_counter()
    compiled = fn.lower(model, batch).compile()
    compile_ms = (time.perf_counter() - start) * 1e3
    flops = (compiled.cost_analysis() or {}).get("flops", float("nan"))
    fn(model, batch).block_until_ready()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(model, batch).block_until_ready()
        times.append((time.perf_counter() - t) * 1e3)
    return {"ms_median": float(np.median(times)), "ms_p99": float(np.percentile(times, 99)),
            "compile_ms": compile_ms, "gflop": flops / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=str(CONFIG_DIR / "base.toml"))
    parser.add_argument("--candidates", type=int, nargs="+", default=[32, 256, 1500, 5000])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    config = load_config(args.config).model
    model = build_ranker(config)
    roofline = matmul_rate("float32")["gflops"]
    print(json.dumps({"bench": "roofline", "gflops": roofline, "backend": jax.default_backend()}))
    full = nnx.jit(lambda m, b: m(b))
    prefix = nnx.jit(lambda m, b: m.score_candidates(b))
    rng = np.random.default_rng(0)
    for c in args.candidates:
        batch = featurize(request(config, c, rng), config)
        results = {}
        for path, fn in (("full", full), ("prefix", prefix)):
            r = measure(fn, model, batch, args.runs)
            r["roofline_fraction"] = r["gflop"] / (r["ms_median"] / 1e3) / roofline
            results[path] = r
            line = {"bench": "rank_latency", "path": path, "candidates": c, **r}
            if path == "prefix":
                line["speedup_vs_full"] = results["full"]["ms_median"] / r["ms_median"]
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()

"""Latency of scoring one request: full-sequence path vs the cached-prefix path.

Base config (D 128, 4 layers, history 128), one user, 32 / 256 / 1,500 / 5,000
candidates, float32 on the CPU, model with its embedding lookups. One JSON line
per (path, candidates): ms median and p99 over >= 30 runs (compile reported
apart), the XLA-counted GFLOP per call, the fraction of the matmul roofline
measured in the same run, and the prefix path's speedup over the full path.
"prefix" is the served path (`PrefixScorer.probabilities`, host arrays in and
out); its `host_overhead_ms` is what remains once the same compiled programs
are timed on arrays already on the device. A last line times `Ranker.rank`
end to end (pipeline + model) at 1,500 candidates.
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
from candidate_pipeline.types import Candidate, HistoryItem, Query  # noqa: E402
from phoenix.config import CONFIG_DIR, load_config  # noqa: E402
from phoenix.data.batch import RequestBatch, featurize  # noqa: E402
from phoenix.feed.build import build_pipeline  # noqa: E402
from phoenix.feed.ranker_api import Ranker  # noqa: E402
from phoenix.model.ranker import build_ranker  # noqa: E402
from phoenix.serving.prefix_scorer import PrefixScorer  # noqa: E402
from phoenix.serving.service import RankerService  # noqa: E402


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


def timed(call, runs: int) -> dict:
    call()  # warm: compile and first run
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return {"ms_median": float(np.median(times)), "ms_p99": float(np.percentile(times, 99))}


def full_path(model, batch, runs: int) -> dict:
    """X's way: attention over user + history + all candidates, masked afterwards."""
    graphdef, state = nnx.split(model)
    fn = jax.jit(lambda s, b: jax.nn.sigmoid(nnx.merge(graphdef, s).full_sequence(b)))
    batch = jax.device_put(batch)
    start = time.perf_counter()
    compiled = fn.lower(state, batch).compile()
    compile_ms = (time.perf_counter() - start) * 1e3
    flops = compiled.cost_analysis().get("flops", float("nan"))
    return {**timed(lambda: fn(state, batch).block_until_ready(), runs), "compile_ms": compile_ms,
            "gflop": flops / 1e9}


def prefix_path(scorer: PrefixScorer, batch, runs: int) -> dict:
    """Our serving path, host batch in, probabilities out (padding, transfers and all)."""
    start = time.perf_counter()
    scorer.probabilities(batch)
    compile_ms = (time.perf_counter() - start) * 1e3
    result = {**timed(lambda: scorer.probabilities(batch), runs), "compile_ms": compile_ms,
              "gflop": scorer.flops(batch) / 1e9}
    # The same programs on arrays already on the device: what is left is host-side overhead.
    prefix, chunks = jax.device_put(scorer.prepare(batch))

    def device_only():
        jax.block_until_ready(scorer.run(prefix, chunks))

    result["host_overhead_ms"] = result["ms_median"] - timed(device_only, runs)["ms_median"]
    return result


def rank_api(scorer: PrefixScorer, config, candidates: int, runs: int) -> dict:
    """`Ranker.rank` end to end: parsing, filters, model, weighted score, diversity, top-K."""
    service = RankerService(scorer.model, config.model, keep_recent_history=True, scorer=scorer)
    ranker = Ranker(service, build_pipeline(config.pipeline, service), config.pipeline)
    rng = np.random.default_rng(1)
    now = 1_800_000_000
    history = [HistoryItem(int(p), int(a), ("favorite",)) for p, a in
               zip(rng.integers(1, 10**9, config.model.history_len), rng.integers(1, 10**6, config.model.history_len))]
    user = Query(user_id=7, request_time_s=now, history=history)
    posts = [Candidate(post_id=int(p), author_id=int(a), created_s=now - int(age)) for p, a, age in
             zip(rng.choice(10**9, candidates, replace=False) + 1, rng.integers(1, 10**6, candidates),
                 rng.integers(0, 40 * 3600, candidates))]
    feed = ranker.rank(user, posts)
    assert feed.items and not feed.errors, feed.errors
    return timed(lambda: ranker.rank(user, posts), runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=str(CONFIG_DIR / "base.toml"))
    parser.add_argument("--candidates", type=int, nargs="+", default=[32, 256, 1500, 5000])
    parser.add_argument("--rank-candidates", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    config = load_config(args.config)
    model = build_ranker(config.model)
    scorer = PrefixScorer(model)
    roofline = matmul_rate("float32")["gflops"]
    print(json.dumps({"bench": "roofline", "gflops": roofline, "backend": jax.default_backend()}))
    rng = np.random.default_rng(0)
    for c in args.candidates:
        batch = featurize(request(config.model, c, rng), config.model)
        results = {"full": full_path(model, batch, args.runs), "prefix": prefix_path(scorer, batch, args.runs)}
        for path, r in results.items():
            r["roofline_fraction"] = r["gflop"] / (r["ms_median"] / 1e3) / roofline
            line = {"bench": "rank_latency", "path": path, "candidates": c, **r}
            if path == "prefix":
                line["speedup_vs_full"] = results["full"]["ms_median"] / r["ms_median"]
            print(json.dumps(line), flush=True)
    r = rank_api(scorer, config, args.rank_candidates, args.runs)
    print(json.dumps({"bench": "rank_latency", "path": "rank_api", "candidates": args.rank_candidates, **r}))


if __name__ == "__main__":
    main()

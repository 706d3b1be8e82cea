"""Time to retrieve the top 1,000 posts for one user from 100K and 1M item corpora (CPU).

Three ways, measured in the same run on the same vectors:
* `index`: `CorpusIndex.search` (chunked matmul + `lax.top_k` merged in one
  `lax.scan`, exclusions and time window applied inside), one query;
* `numpy`: the plain baseline, `vectors @ user`, `argpartition`, sort of the K;
* `retriever`: the served path end to end, `Retriever.retrieve` with a user
  tower pass over a full history and 500 excluded seen posts (base config).

One JSON line per (method, corpus): ms median and p99 over the runs, the
speedup over numpy, and the bytes of item vectors streamed per ms (the search
is a matrix-vector product, bound by memory bandwidth, not by the matmul
roofline, so GB/s is its honest unit).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rank_latency import timed  # noqa: E402
from candidate_pipeline.types import HistoryItem  # noqa: E402
from phoenix.config import CONFIG_DIR, load_config  # noqa: E402
from phoenix.retrieval.corpus_index import CorpusIndex  # noqa: E402
from phoenix.retrieval.retriever import Retriever  # noqa: E402
from phoenix.retrieval.two_tower import build_two_tower  # noqa: E402


def numpy_top_k(vectors: np.ndarray, user: np.ndarray, k: int) -> np.ndarray:
    scores = vectors @ user  # [N]
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top])]


def bench_corpus(n: int, config, model, history, k: int, runs: int, rng: np.random.Generator) -> list[dict]:
    dim = config.model.model_dim
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    post_ids = np.arange(1, n + 1, dtype=np.int64)
    index = CorpusIndex(post_ids, rng.integers(1, 10**5, n), rng.integers(0, 10**6, n), vectors)
    user = vectors[0] + 0.1 * rng.standard_normal(dim, dtype=np.float32)
    user /= np.linalg.norm(user)
    block = config.retrieval.search_block_scores
    got, _ = index.search(user[None], k, block_scores=block)
    agree = float(np.isin(got[0], post_ids[numpy_top_k(vectors, user, k)]).mean())
    retriever = Retriever(model, config, index)
    seen = post_ids[rng.choice(n, 500, replace=False)]
    results = {
        "numpy": timed(lambda: numpy_top_k(vectors, user, k), runs),
        "index": timed(lambda: index.search(user[None], k, block_scores=block), runs),
        "retriever": timed(lambda: retriever.retrieve(7, history, k, exclude_post_ids=seen), runs),
    }
    return [
        {
            "bench": "retrieval_latency", "method": method, "corpus": n, "dim": dim, "k": k, **timing,
            "speedup_vs_numpy": results["numpy"]["ms_median"] / timing["ms_median"],
            "gb_per_s": n * dim * 4 / 1e9 / (timing["ms_median"] / 1e3),
            "top_k_agrees_with_numpy": agree,
        }
        for method, timing in results.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=str(CONFIG_DIR / "base.toml"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("-k", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    config = load_config(args.config)
    rng = np.random.default_rng(0)
    model = build_two_tower(config.model, config.retrieval)
    history = [HistoryItem(int(p), int(a), ("favorite",)) for p, a in
               zip(rng.integers(1, 10**9, config.model.history_len), rng.integers(1, 10**6, config.model.history_len))]
    for n in args.sizes:
        for line in bench_corpus(n, config, model, history, args.k, args.runs, rng):
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()

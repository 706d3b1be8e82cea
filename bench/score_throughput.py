"""Batch scoring throughput: candidates per second, model alone and `phoenix score` end to end.

Writes synthetic request files (base config shapes: full histories, a fixed
number of candidates per user), then measures in the same run:

* `model`: `PrefixScorer.probabilities` on already-featurized user batches
  (the compiled programs, padding and transfers included), with its XLA
  FLOP count and the fraction of the matmul roofline it reaches;
* `end_to_end`: `score_files` from Parquet in to Parquet out (decoding,
  hashing, model, weighted score, atomic part writes), and its ratio to the
  model alone.

Without --workdir the model is untrained (speed does not depend on weights).
One JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.roofline import matmul_rate  # noqa: E402
from phoenix.config import CONFIG_DIR, load_config  # noqa: E402
from phoenix.data.batch import featurize  # noqa: E402
from phoenix.model.ranker import build_ranker  # noqa: E402
from phoenix.serving.batch_scoring import score_files  # noqa: E402
from phoenix.serving.prefix_scorer import PrefixScorer  # noqa: E402
from phoenix.serving.request_files import REQUEST_SCHEMA, decode_requests  # noqa: E402
from phoenix.training.optimizer import make_optimizer  # noqa: E402
from phoenix.workdir import checkpoint_manager, load_model, save_checkpoint, write_workdir_config  # noqa: E402


def untrained_workdir(config_path: str, workdir: Path) -> Path:
    config = load_config(config_path)
    model = build_ranker(config.model)
    write_workdir_config(config, workdir)
    manager = checkpoint_manager(workdir)
    save_checkpoint(manager, 0, model, make_optimizer(model, config.train, config.train.num_steps), {"step": 0})
    manager.wait_until_finished()
    manager.close()
    return workdir


def list_column(values: np.ndarray, lengths: np.ndarray, value_type: pa.DataType) -> pa.Array:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=value_type))


def write_requests(path: Path, users: int, history: int, candidates: int, actions: tuple[str, ...], seed: int):
    """One file of `users` requests, built column-wise (fast enough for millions of candidates)."""
    rng = np.random.default_rng(seed)
    h_len, c_len = np.full(users, history), np.full(users, candidates)
    names = pa.array(np.array(actions)[rng.integers(0, len(actions), users * history)])
    one_action_each = pa.ListArray.from_arrays(pa.array(np.arange(users * history + 1, dtype=np.int32)), names)
    offsets = pa.array((np.arange(users + 1) * history).astype(np.int32))
    columns = {
        "user_id": pa.array(np.arange(1, users + 1) + seed * users),
        "history_post_id": list_column(rng.integers(1, 10**9, users * history), h_len, pa.int64()),
        "history_author_id": list_column(rng.integers(1, 10**6, users * history), h_len, pa.int64()),
        "history_actions": pa.ListArray.from_arrays(offsets, one_action_each),
        "history_surface": list_column(np.zeros(users * history), h_len, pa.int32()),
        "candidate_post_id": list_column(rng.integers(1, 10**9, users * candidates), c_len, pa.int64()),
        "candidate_author_id": list_column(rng.integers(1, 10**6, users * candidates), c_len, pa.int64()),
        "candidate_surface": list_column(np.zeros(users * candidates), c_len, pa.int32()),
    }
    pq.write_table(pa.table(columns, schema=REQUEST_SCHEMA), path, row_group_size=1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=str(CONFIG_DIR / "base.toml"))
    parser.add_argument("--workdir", help="a trained workdir (default: an untrained model of --config)")
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--users", type=int, default=1024, help="requests per file")
    parser.add_argument("--candidates", type=int, default=500, help="candidates per request")
    parser.add_argument("--users-per-batch", type=int, default=8)
    parser.add_argument("--rows-per-part", type=int, default=256)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="phoenix-score-bench-"))
    try:
        workdir = Path(args.workdir) if args.workdir else untrained_workdir(args.config, scratch / "workdir")
        model, config, _ = load_model(workdir)
        mc = config.model
        for f in range(args.files):
            write_requests(scratch / f"requests-{f}.parquet", args.users, mc.history_len, args.candidates,
                           mc.actions, seed=f)
        roofline = matmul_rate("float32")["gflops"]
        print(json.dumps({"bench": "roofline", "gflops": roofline, "backend": jax.default_backend()}))

        # Model alone: featurized batches of users_per_batch users, as the job feeds them.
        table = pq.read_table(scratch / "requests-0.parquet")
        decoded = decode_requests(table.slice(0, min(args.users, 256)), mc, "bench")
        scorer = PrefixScorer(model)
        batches = [
            featurize(decoded.request.take(slice(i, i + args.users_per_batch)), mc)
            for i in range(0, decoded.request.user_id.size, args.users_per_batch)
        ]
        scorer.probabilities(batches[0])  # compile
        start = time.perf_counter()
        for batch in batches:
            scorer.probabilities(batch)
        seconds = time.perf_counter() - start
        scored = sum(b.candidates.cutoff.size for b in batches)
        gflop = scorer.flops(batches[0]) / 1e9 * len(batches)
        model_rate = scored / seconds
        print(json.dumps({"bench": "score_throughput", "what": "model", "candidates": scored,
                          "candidates_per_s": model_rate, "roofline_fraction": gflop / seconds / roofline,
                          "users_per_batch": args.users_per_batch, "history": mc.history_len}), flush=True)

        # End to end: Parquet in, Parquet out, through the job's own code.
        start = time.perf_counter()
        manifest = score_files(workdir, sorted(scratch.glob("requests-*.parquet")), scratch / "out",
                               args.rows_per_part, args.users_per_batch, progress=False)
        seconds = time.perf_counter() - start
        rate = manifest["candidates"] / seconds
        print(json.dumps({"bench": "score_throughput", "what": "end_to_end", "candidates": manifest["candidates"],
                          "requests": manifest["requests"], "seconds": seconds, "candidates_per_s": rate,
                          "ratio_to_model": rate / model_rate, "target_candidates_per_s": 150_000}))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Real-log path at scale: a 300,000-interaction log (30,000 users, 25,000 items) on this CPU.

Generates the log (`phoenix.data.synthetic_log`), writes it as CSV, then measures
in the same run, one JSON line each:

* `load`: `load_interactions` (CSV parse, validation, id mapping, time sort)
  and the next-item split with its 2 x 100 sampled negatives per user;
* `baselines`: most-popular and co-occurrence, both splits;
* `phoenix_trainer`: Phoenix's training epoch as issue 23 found it (the
  catalogue losses as plain autodiff over whole [B, P, S] arrays, every step
  `batch_size` windows whatever their length) against the chunked catalogue
  losses (`phoenix.benchmark.catalogue_loss`) with those batches and with
  `logs.batch_by_tokens` (short windows packed to as many positions as
  `batch_size` full ones), in the same run: each runs two epochs, the first
  with its compilations, the second steady; the ratios are to the first
  setting's. The XLA-counted FLOPs of the epoch's steps over its seconds, as
  a fraction of the matmul rate (`bench/roofline.py`, measured before and
  after, the larger kept);
* `sasrec_step`: SASRec's training step on the same batches of the log's
  users left-padded and packed end to end (what it trains on), in the same
  run on one trainer: median milliseconds, the ratio, and the XLA-counted
  FLOP/s of the packed step as a fraction of the matmul rate;
* `phoenix_epoch` / `sasrec_epoch`: one training epoch of each model with
  the benchmark config (compilation included, so this is an upper bound),
  plus one validation pass;
* `projection`: the whole `benchmark-logs` run if every epoch cost the same
  and training ran to `max_epochs` or to its `time_budget_s` plus the epoch
  that crosses it (early stopping only shortens it), as a ratio to the
  30-minute budget; peak resident memory as a ratio to 8 GiB.

`--full` also runs `benchmark-logs` end to end and reports its wall time.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from phoenix.benchmark.count_baselines import cooccurrence_scores, popular_scores  # noqa: E402
from phoenix.benchmark.run import run_log_benchmark, settings_for_log  # noqa: E402
from phoenix.config import CONFIG_DIR, load_config, replace  # noqa: E402
from phoenix.data.interactions import load_interactions  # noqa: E402
from phoenix.data.protocol import hit_and_ndcg, split_next_item  # noqa: E402
from phoenix.data.synthetic_log import synthetic_interactions  # noqa: E402

BUDGET_S = 30 * 60
MEMORY_BUDGET_GIB = 8.0


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def memory() -> dict:
    peak = peak_rss_gib()
    return {"peak_rss_gib": round(peak, 2), "peak_rss_vs_8gib": round(peak / MEMORY_BUDGET_GIB, 3)}


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def one_epoch(config, split, which: str) -> tuple[float, float]:
    """Seconds of one training epoch and of one validation pass (num_epochs=1, no early stop)."""
    start = time.perf_counter()
    if which == "phoenix":
        from phoenix.benchmark.phoenix_on_logs import train_phoenix_on_log

        _, _, fit = train_phoenix_on_log(split, replace(config, logs={"train": {"num_epochs": 1}}), progress=False)
    else:
        from phoenix.benchmark.sasrec import train_sasrec

        _, fit = train_sasrec(split, replace(config, sasrec={"train": {"num_epochs": 1}}).sasrec, progress=False)
    return time.perf_counter() - start, fit.validations[-1]["valid_ndcg@10"]


def timed_epochs(split, config, cross_entropies, epochs: int = 2) -> dict:
    """Seconds of each of the first `epochs` training epochs (steps only, no validation) and the
    XLA-counted FLOPs of one epoch's steps, counted on the plain definition of the catalogue losses:
    XLA counts a loop's body once, and the chunked gradient's recomputed logits are not the model's work."""
    import jax

    from phoenix.benchmark.catalogue_loss import materialised_cross_entropies
    from phoenix.benchmark.phoenix_on_logs import log_training

    run = log_training(split, config, cross_entropies)
    key = jax.random.key(0)
    seconds, example_by_shape, shapes = [], {}, []  # one batch of each shape, counted after the timing
    for index in range(epochs):
        start = time.perf_counter()
        for batch, shared in run.epoch(index):
            loss = run.trainer.step(batch, shared, key)
            if index == 0:
                shape = str([getattr(a, "shape", None) for a in jax.tree.leaves((batch, shared))])
                shapes.append(shape)
                example_by_shape.setdefault(shape, (batch, shared))
        jax.block_until_ready(loss)
        seconds.append(time.perf_counter() - start)
    counted = (run.trainer if cross_entropies is materialised_cross_entropies  # the plain run counts its own
               else log_training(split, config, materialised_cross_entropies).trainer)
    flops_by_shape = {k: counted.step_flops(*example, key) for k, example in example_by_shape.items()}
    flops = sum(flops_by_shape[k] for k in shapes)
    return {"epoch_s": [round(x, 2) for x in seconds], "steps": run.steps_per_epoch,
            "shapes": len(flops_by_shape), "gflop_per_epoch": round(flops / 1e9, 1)}


def trainer_comparison(split, config) -> dict:
    """The trainer as issue 23 found it (the catalogue losses as plain autodiff, batches of `batch_size`
    windows) against the chunked catalogue losses with batches of `batch_size` windows and with
    batches packed by tokens, in one run; ratios of steady epochs to the first."""
    from bench.roofline import matmul_rate
    from phoenix.benchmark.catalogue_loss import catalogue_cross_entropies, materialised_cross_entropies

    before = matmul_rate("float32")["gflops"]
    settings = {
        "materialised_by_count": (materialised_cross_entropies, False),
        "chunked_by_count": (catalogue_cross_entropies, False),
        "chunked_by_tokens": (catalogue_cross_entropies, True),
    }
    runs = {name: timed_epochs(split, replace(config, logs={"batch_by_tokens": by_tokens}), fn)
            for name, (fn, by_tokens) in settings.items()}
    roofline = max(before, matmul_rate("float32")["gflops"])
    baseline = runs["materialised_by_count"]["epoch_s"]
    for r in runs.values():
        r["of_matmul_roofline"] = round(r["gflop_per_epoch"] / r["epoch_s"][-1] / roofline, 3)
        r["steady_speedup"] = round(baseline[-1] / r["epoch_s"][-1], 2)
        r["first_epoch_speedup"] = round(baseline[0] / r["epoch_s"][0], 2)
    return {"stage": "phoenix_trainer", "matmul_gflops": round(roofline, 1), **runs}


def sasrec_packing(split, config, steps: int = 30) -> dict:
    """SASRec's step on left-padded batches of 128 users against the same batches packed, in one run."""
    import jax
    import numpy as np
    from flax import nnx

    from bench.roofline import matmul_rate
    from phoenix.benchmark.sasrec import ROW_STEP, cut_padding, left_padded, packed, sasrec_loss
    from phoenix.model.sasrec import SASRec
    from phoenix.training.trainer import Trainer

    sasrec = config.sasrec
    users = np.flatnonzero(split.train_len >= 2) + 1
    sequences = left_padded(split, users, split.train_len[users - 1], sasrec.history_len + 1)
    rng = np.random.default_rng(0)
    negatives = np.where(sequences[:, 1:] != 0, rng.integers(1, split.num_items + 1, sequences[:, 1:].shape), 0)
    padded = []
    for _ in range(steps):
        rows = rng.choice(users.size, sasrec.train.batch_size, replace=False)
        padded.append(tuple(cut_padding(sequences[rows, :-1], sequences[rows, 1:], negatives[rows])))
    packs = [packed(list(batch), sasrec.history_len, ROW_STEP) for batch in padded]  # as train_sasrec on one device
    trainer = Trainer("sasrec", lambda: SASRec(split.num_items, sasrec, rngs=nnx.Rngs(0)), sasrec_loss, sasrec.train,
                      config.mesh)
    key = jax.random.key(0)

    def median_ms(batches) -> float:
        for batch in batches:  # compile every shape first
            trainer.step(batch, None, key).block_until_ready()
        times = []
        for batch in batches:
            start = time.perf_counter()
            trainer.step(batch, None, key).block_until_ready()
            times.append(time.perf_counter() - start)
        return 1e3 * float(np.median(times))

    padded_ms, packed_ms = median_ms(padded), median_ms(packs)
    flops = np.mean([trainer.step_flops(batch, None, key) for batch in packs])
    roofline = matmul_rate("float32")["gflops"]
    return {"stage": "sasrec_step", "batch_users": sasrec.train.batch_size, "padded_ms": round(padded_ms, 1),
            "packed_ms": round(packed_ms, 1), "speedup": round(padded_ms / packed_ms, 2),
            "tokens_padded": int(np.mean([b[0].size for b in padded])),
            "tokens_packed": int(np.mean([b[0].size for b in packs])), "matmul_gflops": round(roofline, 1),
            "packed_of_matmul_roofline": round(flops / (packed_ms / 1e3) / 1e9 / roofline, 3)}


def worst_training_s(epoch_s: float, max_epochs: int, budget_s: float) -> float:
    """Longest training: every epoch to max_epochs, or the budget plus the epoch that crosses it."""
    unbounded = epoch_s * max_epochs
    return unbounded if budget_s <= 0 else min(unbounded, budget_s + epoch_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(CONFIG_DIR / "logs.toml"))
    parser.add_argument("--users", type=int, default=30_000)
    parser.add_argument("--items", type=int, default=25_000)
    parser.add_argument("--interactions", type=int, default=300_000)
    parser.add_argument("--full", action="store_true", help="also run benchmark-logs end to end")
    parser.add_argument("--sasrec-step-only", action="store_true", help="after loading, only the sasrec_step stage")
    parser.add_argument("--trainer-only", action="store_true", help="after loading, only the phoenix_trainer stage")
    args = parser.parse_args()
    config = load_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.csv"
        pacsv.write_csv(synthetic_interactions(args.users, args.items, args.interactions, seed=0), path)
        start = time.perf_counter()
        log = load_interactions(path, config.logs, config.model.actions)
        loaded = time.perf_counter() - start
        split = split_next_item(log, config.logs.eval_negatives, config.logs.eval_seed)
        load_s = time.perf_counter() - start
        emit({"stage": "load", "interactions": len(log), "users": log.num_users, "items": log.num_items,
              "read_s": round(loaded, 2), "read_and_split_s": round(load_s, 2),
              "rows_per_s": round(len(log) / loaded)})
        start = time.perf_counter()
        counts = {name: hit_and_ndcg(fn(split, "test")) for name, fn in
                  (("popular", popular_scores), ("cooccurrence", cooccurrence_scores))}
        baselines_s = time.perf_counter() - start
        emit({"stage": "baselines", "seconds": round(baselines_s, 2), "test": counts})
        trained, _ = settings_for_log(config, log)  # what the benchmark trains with (the generated log is sparse)
        if not args.trainer_only:
            emit(sasrec_packing(split, trained))
        if args.sasrec_step_only:
            return
        emit(trainer_comparison(split, trained))
        if args.trainer_only:
            return
        epochs = {}
        for which in ("phoenix", "sasrec"):
            seconds, ndcg = one_epoch(trained, split, which)
            epochs[which] = seconds
            emit({"stage": f"{which}_epoch", "seconds": round(seconds, 2), "valid_ndcg@10_after_1": round(ndcg, 4)})
        max_epochs = {"phoenix": trained.logs.train.num_epochs, "sasrec": trained.sasrec.train.num_epochs}
        budgets = {"phoenix": trained.logs.train.time_budget_s, "sasrec": trained.sasrec.train.time_budget_s}
        worst = load_s + baselines_s + sum(worst_training_s(epochs[m], max_epochs[m], budgets[m]) for m in epochs)
        emit({"stage": "projection", "max_epochs": max_epochs, "time_budget_s": budgets, "worst_case_s": round(worst),
              "worst_case_vs_30min": round(worst / BUDGET_S, 3), **memory()})
        if args.full:
            start = time.perf_counter()
            report = run_log_benchmark(path, config, Path(tmp) / "out", progress=False, log=lambda _: None)
            wall = time.perf_counter() - start
            emit({"stage": "full_run", "seconds": round(wall), "vs_30min": round(wall / BUDGET_S, 3), **memory(),
                  "test_ndcg@10": {k: round(v["test"]["ndcg@10"], 4) for k, v in report["models"].items()},
                  "epochs": {k: v.get("epochs") for k, v in report["models"].items() if "epochs" in v}})


if __name__ == "__main__":
    main()

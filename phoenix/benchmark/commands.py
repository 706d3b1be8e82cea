"""The command line of the log benchmark: `phoenix benchmark-logs` and `phoenix benchmark-seeds`.

Registered by `phoenix.cli`; the heavy modules (training, models) load only when a command runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from phoenix.benchmark.seeds import run_seeds, seed_list, summarise_seeds, summary_lines, with_seed
from phoenix.config import CONFIG_DIR, load_config


def _benchmark_logs(args: argparse.Namespace) -> int:
    from phoenix.benchmark.run import MODELS, run_log_benchmark

    config = load_config(args.config)
    models = tuple(args.models.split(",")) if args.models else MODELS

    def run(config, out: Path) -> dict:
        return run_log_benchmark(args.interactions, config, out, args.format, models, not args.no_progress,
                                 valid_only=args.valid_only, jobs=args.jobs)

    if args.seeds:
        report = run_seeds(run, config, args.seeds, Path(args.out))
        print("\n".join(summary_lines(report)))
    else:
        report = run(config if args.seed is None else with_seed(config, args.seed), Path(args.out))
    print(json.dumps(report))
    return 0


def _benchmark_seeds(args: argparse.Namespace) -> int:
    summary = summarise_seeds(args.runs)
    print("\n".join(summary_lines(summary)))
    print(json.dumps(summary))
    return 0


def add_benchmark_commands(subcommands: argparse._SubParsersAction) -> None:
    p = subcommands.add_parser("benchmark-logs", help="next-item benchmark on an interaction log: Phoenix vs "
                                                      "SASRec, most-popular and co-occurrence (last line: JSON)")
    p.add_argument("--interactions", required=True, help="CSV/TSV/Parquet log, 'user item' text, or an ml-100k folder")
    p.add_argument("--format", default="auto", choices=("auto", "csv", "tsv", "parquet", "sasrec", "ml-100k"))
    p.add_argument("--config", default=str(CONFIG_DIR / "logs.toml"))
    p.add_argument("--out", default="runs/benchmark-logs", help="results, per-model JSON and the NDCG plot")
    seed = p.add_mutually_exclusive_group()
    seed.add_argument("--seed", type=int, help="training seed of Phoenix and SASRec (overrides the config)")
    seed.add_argument("--seeds", type=seed_list,
                      help="several training seeds (0,1,2): each run in OUT/seed-S, then OUT/seeds.json, each pair's "
                           "difference per seed and over seeds")
    p.add_argument("--models", help="comma-separated subset of phoenix,sasrec,popular,cooccurrence, or "
                                    "phoenix_ids (Phoenix on item ids alone, SASRec's information)")
    p.add_argument("--valid-only", action="store_true",
                   help="score the validation split only (for choosing a configuration: the test split is never "
                        "scored; paired intervals over the validation users)")
    p.add_argument("--jobs", type=int, default=1,
                   help="train up to this many models side by side, each in a process pinned to its share of the "
                        "CPU cores (on a small CPU a model's many small kernels barely use a second core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_benchmark_logs)

    p = subcommands.add_parser("benchmark-seeds", help="finished benchmark-logs runs that differ in the training "
                                                       "seed: each model's mean and spread, each pair per seed and "
                                                       "over seeds (last line: JSON)")
    p.add_argument("runs", nargs="+", help="the runs' --out folders (at least two)")
    p.set_defaults(func=_benchmark_seeds)

"""`phoenix` command line: thin wrappers over testable functions.

    phoenix import LOG... --out DIR [--mapping M.toml] [--user-id COL ...] [--skip-malformed]
    phoenix world --config C --out DIR
    phoenix train --config C --workdir DIR [--data DIR] [--mesh DATAxMODEL]
    phoenix eval  --workdir DIR [--data DIR] [--split test] [--json]
    phoenix history --workdir DIR --out FILE.parquet [--split test]
    phoenix rank  --workdir DIR (--user-file U.json | --user ID [--at T]) [--candidates-file C.json]
    phoenix train-retrieval --config C --workdir DIR [--data DIR]
    phoenix index    --workdir DIR --corpus FILE [--out PATH]
    phoenix retrieve --workdir DIR (--user-file U.json | --user ID) [-k 1000]
    phoenix demo  [--config C] [--workdir DIR]
    phoenix benchmark-logs --interactions PATH [--format F] [--config C] [--out DIR] [--seed S | --seeds S,S,S]
                           [--valid-only] [--jobs N]
    phoenix benchmark-seeds OUT OUT [OUT...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from phoenix.benchmark.commands import add_benchmark_commands
from phoenix.config import CONFIG_DIR, ConfigError, load_config, replace


def _world(args: argparse.Namespace) -> int:
    from phoenix.data.world.generator import generate_world
    from phoenix.data.world.io import write_world

    config = load_config(args.config)
    out = write_world(generate_world(config.world, config.model.actions), args.out)
    meta = json.loads((out / "dataset.json").read_text())
    print(json.dumps({"world": str(out), "impressions": meta["counts"]}))
    return 0


IMPORT_FLAGS = ("user_id", "post_id", "author_id", "surface", "impression_id", "request_id", "time", "time_unit",
                "valid_fraction", "test_fraction", "valid_start", "test_start", "format", "follows_file", "posts_file")


def _import(args: argparse.Namespace) -> int:
    from phoenix.config import import_config
    from phoenix.data.log_import import import_log

    overrides = {k: getattr(args, k) for k in IMPORT_FLAGS if getattr(args, k) is not None}
    if args.actions is not None:
        overrides["actions"] = [a.strip() for a in args.actions.split(",") if a.strip()]
    if args.skip_malformed:
        overrides["skip_malformed"] = True
    start = time.perf_counter()
    meta = import_log(args.log, args.out, import_config(args.mapping, **overrides))
    print(json.dumps({"dataset": str(Path(args.out)), "actions": meta["actions"], "impressions": meta["counts"],
                      "users": meta["users"], "posts": meta["posts"], "malformed": meta["malformed"]["counts"],
                      "seconds": round(time.perf_counter() - start, 1)}))
    return 0


def _history(args: argparse.Namespace) -> int:
    import pyarrow.compute as pc

    from phoenix.data.dataset import read_impressions, write_table
    from phoenix.data.histories import history_requests
    from phoenix.workdir import load_workdir_config, read_run_data_dir

    config = load_workdir_config(args.workdir)
    data_dir = Path(args.data) if args.data else read_run_data_dir(args.workdir)
    table = history_requests(read_impressions(data_dir), args.split, config.model.history_len)
    write_table(table, Path(args.out))
    candidates = pc.sum(pc.list_value_length(table.column("candidate_post_id"))).as_py()
    print(json.dumps({"requests": table.num_rows, "candidates": candidates, "out": args.out}))
    return 0


def _train(args: argparse.Namespace) -> int:
    from phoenix.config.mesh import mesh_flag
    from phoenix.parallel.distributed import is_main_process
    from phoenix.training.ranker import train_and_evaluate

    config = load_config(args.config)
    if args.mesh:
        config = replace(config, mesh=mesh_flag(args.mesh))
    result = train_and_evaluate(config, args.workdir, args.data, progress=is_main_process())
    if is_main_process():
        print(json.dumps({"workdir": args.workdir, "valid_mean_auc": result.get("valid_mean_auc")}))
    return 0


def _train_retrieval(args: argparse.Namespace) -> int:
    from phoenix.retrieval.evaluation import evaluate_retrieval
    from phoenix.retrieval.retriever import Retriever
    from phoenix.retrieval.training import train_retrieval
    from phoenix.workdir import read_run_data_dir

    config = load_config(args.config)
    train_retrieval(config, args.workdir, args.data)
    report = evaluate_retrieval(Retriever.load(args.workdir), config, read_run_data_dir(args.workdir), "test")
    print(_format_retrieval(report))
    print(json.dumps(report))
    return 0


def _format_retrieval(report: dict) -> str:
    ks = list(report["recall"]["model"])
    lines = [f"retrieval on the {report['split']} split: {report['users']} users, corpus {report['corpus']} posts, "
             f"{report['relevant_per_user']:.1f} relevant posts per user",
             f"{'':20s} " + " ".join(f"{'recall' + k:>12s}" for k in ks)]
    for name, recall in report["recall"].items():
        lines.append(f"{name:20s} " + " ".join(f"{recall[k]:12.3f}" for k in ks))
    if "model_over_popularity" in report:
        lines.append(f"model / popularity at {ks[-1]}: {report['model_over_popularity']:.2f}x")
    return "\n".join(lines)


def _index(args: argparse.Namespace) -> int:
    from phoenix.retrieval.corpus_file import read_corpus
    from phoenix.retrieval.retriever import Retriever, default_index_path

    retriever = Retriever.load(args.workdir, with_index=False)
    post_ids, author_ids, created_s = read_corpus(args.corpus)
    step = retriever.model_step
    index = retriever.build_index(
        post_ids, author_ids, created_s, meta={"model_step": step, "corpus": str(Path(args.corpus).absolute())}
    )
    out = index.save(args.out or default_index_path(args.workdir))
    print(json.dumps({"index": str(out), "items": len(index), "dim": index.dim, "model_step": step}))
    return 0


def _retrieve(args: argparse.Namespace) -> int:
    from candidate_pipeline.out_of_network import retrieve_for_query
    from candidate_pipeline.types import query_from_dict
    from phoenix.retrieval.retriever import Retriever

    retriever = Retriever.load(args.workdir, args.index)
    if args.user is not None:
        from phoenix.data.dataset import read_impressions, read_metadata
        from phoenix.data.world.oracle import WorldOracle
        from phoenix.feed.demo import world_query
        from phoenix.workdir import read_run_data_dir

        world = read_run_data_dir(args.workdir)
        now = int(read_metadata(world)["end_time_s"])
        query = world_query(read_impressions(world), WorldOracle(world), args.user, now)
    else:
        query = query_from_dict(_read_json(args.user_file, "user"))
    max_age_s = int(retriever.config.pipeline.max_age_hours * 3600)
    found = retrieve_for_query(retriever, query, args.k, max_age_s)
    print(json.dumps({"user_id": query.user_id, "results": [vars(p) for p in found]}))
    return 0


def _format_report(report: dict) -> str:
    """Per-head table: the model, the popularity baseline (and on a synthetic world the ceiling and the oracle)."""
    oracle = "oracle_auc" in report["mean"]
    columns = [("auc", "auc", 6, ".3f"), ("gauc", "gauc", 6, ".3f"), ("baseline_auc", "popular", 7, ".3f"),
               ("baseline_gauc", "pop_gauc", 8, ".3f")]
    columns += [("ceiling_auc", "ceiling", 7, ".3f")] if "ceiling_auc" in report["mean"] else []
    columns += [("oracle_auc", "oracle", 6, ".3f")] if oracle else []
    columns += [("logloss", "logloss", 8, ".4f"), ("rce", "rce", 6, ".2f"), ("calibration", "calib", 6, ".2f"),
                ("calibration_low", "c95_lo", 6, ".2f"), ("calibration_high", "c95_hi", 6, ".2f")]
    columns += [("calibration_to_truth", "to_truth", 8, ".2f"), ("oracle_rce", "o_rce", 6, ".2f"),
                ("oracle_calibration", "o_calib", 7, ".2f")] if oracle else []
    lines = [f"{'head':15s} " + " ".join(f"{title:>{w}s}" for _, title, w, _ in columns)]
    rows = list(report["heads"].items()) + [("mean", report["mean"])]
    for head, m in rows:
        cells = [f"{m[key]:{w}{fmt}}" if key in m else " " * w for key, _, w, fmt in columns]
        lines.append(f"{head:15s} " + " ".join(cells))
    lines.append("calib: mean predicted over observed rate, c95: its 95% interval over users"
                 + ("; to_truth: mean predicted over the truth's mean probability (no label noise)" if oracle else ""))
    if oracle:
        lines.append(f"gap to oracle (mean AUC): {report['mean']['oracle_auc_gap']:.3f}")
    if "ceiling_auc_gap" in report["mean"]:
        lines.append(f"gap to the ceiling of a ranker of ids (mean AUC): {report['mean']['ceiling_auc_gap']:.3f} "
                     "(the oracle without what posts first shown after training hide from every such ranker)")
    ranking = report.get("ranking", {})
    if "model_ndcg@10" in ranking:
        others = ", ".join(f"{k.split('_')[0]} {v:.3f}" for k, v in ranking.items()
                           if k.endswith("ndcg@10") and not k.startswith("model"))
        lines.append(f"NDCG@10 per {ranking['groups']} by the weighted score: model {ranking['model_ndcg@10']:.3f} "
                     f"({others}; {ranking['ndcg_groups']} {ranking['groups']}s)")
    elif "skipped" in ranking:
        lines.append(f"NDCG@10 not computed: {ranking['skipped']}")
    return "\n".join(lines)


def _eval(args: argparse.Namespace) -> int:
    from phoenix.evaluation.ranker import evaluate_workdir

    report = evaluate_workdir(args.workdir, args.data, args.split)
    print(json.dumps(_strict_json(report)) if args.json else _format_report(report))
    return 0


def _strict_json(value):
    """NaN (a metric undefined for a head with one class) as null, so any JSON parser reads the report."""
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(v) for v in value]
    return None if isinstance(value, float) and value != value else value


def _demo(args: argparse.Namespace) -> int:
    from phoenix.evaluation.ranker import evaluate_workdir
    from phoenix.feed.demo import render_feed, sample_feed
    from phoenix.retrieval.evaluation import evaluate_retrieval
    from phoenix.retrieval.retriever import Retriever
    from phoenix.retrieval.training import train_retrieval
    from phoenix.training.ranker import train_and_evaluate
    from phoenix.workdir import read_run_data_dir

    start = time.perf_counter()
    config = load_config(args.config)
    workdir = Path(args.workdir)
    print(f"[1/5] world + [2/5] training {args.config} in {workdir} ...", flush=True)
    train_and_evaluate(config, workdir)
    print("[3/5] evaluating on the test split", flush=True)
    report = evaluate_workdir(workdir)
    print(_format_report(report))
    print(f"[4/5] two-tower retrieval (out-of-network source) in {workdir / 'retrieval'} ...", flush=True)
    train_retrieval(config, workdir)
    retrieval = evaluate_retrieval(Retriever.load(workdir), config, read_run_data_dir(workdir), "test")
    print(_format_retrieval(retrieval))
    print("[5/5] a ranked feed for one user (in-network store + retrieved out-of-network posts)", flush=True)
    print(render_feed(sample_feed(workdir, user_id=args.user)))
    print(f"demo finished in {time.perf_counter() - start:.0f} s; checkpoints and training.png in {workdir} "
          f"(ranker) and {workdir / 'retrieval'} (retrieval, with index.npz)")
    return 0


def _read_json(path: str, what: str):
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: {what} file not found")
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file}: not valid JSON: {err}") from err


def _rank(args: argparse.Namespace) -> int:
    from phoenix.feed.ranker_api import Ranker

    user = _read_json(args.user_file, "user") if args.user_file else None  # bad files fail before loading
    candidates = _read_json(args.candidates_file, "candidates") if args.candidates_file else []
    if not isinstance(candidates, list):
        raise ValueError(f"{args.candidates_file}: expected a JSON list of candidates")
    ranker = Ranker.load(args.workdir)
    feed = ranker.rank(user if user is not None else ranker.user(args.user, args.at), candidates)
    print(json.dumps(feed.to_dict(), indent=2 if args.pretty else None))
    return 0


def _score(args: argparse.Namespace) -> int:
    from phoenix.serving.batch_scoring import score_files

    manifest = score_files(args.workdir, args.input, args.output, args.rows_per_part, args.users_per_batch)
    summary = {k: v for k, v in manifest.items() if k != "parts"} | {"parts": len(manifest["parts"])}
    print(json.dumps(summary))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phoenix", description="Phoenix For You ranker")
    parser.add_argument("--distributed", action="store_true",
                        help="call jax.distributed.initialize() first (one process per host; the platform "
                             "or SLURM supplies the coordinator)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("import", help="an impression log (CSV/TSV/Parquet) -> a dataset directory for training")
    p.add_argument("log", nargs="+", help="log files, directories of them, or globs")
    p.add_argument("--out", required=True, help="dataset directory to write")
    p.add_argument("--mapping", help="TOML file with an [import] table (flags below override its keys)")
    for key in IMPORT_FLAGS:
        kind = float if key.endswith("fraction") else str
        p.add_argument("--" + key.replace("_", "-"), dest=key, type=kind, help=f"import.{key}")
    p.add_argument("--actions", help="comma-separated action columns (default: every other column)")
    p.add_argument("--skip-malformed", action="store_true", help="drop malformed rows (counted and reported)")
    p.set_defaults(func=_import)

    p = sub.add_parser("world", help="generate a synthetic world as Parquet")
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_world)

    p = sub.add_parser("train", help="train (or resume) the ranker")
    p.add_argument("--config", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--data", help="dataset directory from `phoenix import` or `phoenix world` "
                                  "(default: generate a world in WORKDIR/world)")
    p.add_argument("--mesh", help="device mesh DATAxMODEL overriding [mesh] (4x2; 0x4: all devices, tables on 4)")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="per-head AUC, GAUC, log-loss, RCE, calibration and NDCG@10 beside a "
                                    "popularity baseline (and the ceiling and the oracle on a synthetic world)")
    p.add_argument("--workdir", required=True)
    p.add_argument("--data", help="dataset directory (default: the one the workdir trained on)")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_eval)

    p = sub.add_parser("history", help="a request file of each user's history and their impressions of a split "
                                       "(input for `phoenix score`)")
    p.add_argument("--workdir", required=True)
    p.add_argument("--data", help="dataset directory (default: the one the workdir trained on)")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--out", required=True, help="Parquet request file to write")
    p.set_defaults(func=_history)

    p = sub.add_parser("rank", help="rank candidates for one user through the full pipeline (JSON out)")
    p.add_argument("--workdir", required=True)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-file", help="JSON object: user_id, request_time_s, history, ...")
    who.add_argument("--user", help="a user id of the workdir's dataset: their history from the log")
    p.add_argument("--at", type=int, help="with --user: the request time in seconds (default: the log's end)")
    p.add_argument("--candidates-file", help="JSON list of candidates (default: none; the sources find them)")
    p.add_argument("--pretty", action="store_true")
    p.set_defaults(func=_rank)

    p = sub.add_parser("score", help="batch-score Parquet request files (resumable, exactly once)")
    p.add_argument("--workdir", required=True)
    p.add_argument("--input", required=True, nargs="+", help="request .parquet files or directories of them")
    p.add_argument("--output", required=True, help="output directory of part files and manifests")
    p.add_argument("--rows-per-part", type=int, default=4096, help="requests per output part")
    p.add_argument("--users-per-batch", type=int, default=64, help="users scored together in one model call")
    p.set_defaults(func=_score)

    p = sub.add_parser("train-retrieval", help="train (or resume) the two-tower retrieval model and index the world")
    p.add_argument("--config", required=True)
    p.add_argument("--workdir", required=True, help="the ranker's workdir (the model goes to WORKDIR/retrieval)")
    p.add_argument("--data", help="world directory (default: the workdir's world, else a new one)")
    p.set_defaults(func=_train_retrieval)

    p = sub.add_parser("index", help="embed a corpus (Parquet: post_id, author_id[, created_s]) into an index")
    p.add_argument("--workdir", required=True)
    p.add_argument("--corpus", required=True, help="Parquet file of the posts to index")
    p.add_argument("--out", help="index file (default: WORKDIR/retrieval/index.npz)")
    p.set_defaults(func=_index)

    p = sub.add_parser("retrieve", help="top-k out-of-network posts for one user (JSON out)")
    p.add_argument("--workdir", required=True)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-file", help="JSON object as for `phoenix rank`: user_id, request_time_s, history, ...")
    who.add_argument("--user", type=int, help="a user id of the workdir's synthetic world, at the world's end")
    p.add_argument("-k", type=int, default=1000, help="how many posts to return")
    p.add_argument("--index", help="index file (default: WORKDIR/retrieval/index.npz)")
    p.set_defaults(func=_retrieve)

    p = sub.add_parser("demo", help="world -> train (tiny) -> eval -> one user's ranked feed")
    p.add_argument("--config", default=str(CONFIG_DIR / "tiny.toml"))
    p.add_argument("--workdir", default="runs/demo")
    p.add_argument("--user", type=int, default=None, help="user id to show (default: a test user)")
    p.set_defaults(func=_demo)

    add_benchmark_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from phoenix.parallel.distributed import initialize_from_environment

    # A multi-host launch joins its job before anything touches a device.
    initialize_from_environment(force=args.distributed)
    try:
        return args.func(args)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        print(f"phoenix {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""`phoenix benchmark-logs`: Phoenix against SASRec, most-popular and co-occurrence on one log.

Everything is trained and evaluated in the same run, on the same split and the
same sampled negatives. The trained Phoenix is left as a workdir that
`Ranker.load` and `phoenix score` serve (`OUT/phoenix_workdir`, see
`phoenix.benchmark.servable`). Each model's result is written to
`OUT/models/{name}.json` as soon as it is known, tagged with a fingerprint of
the log file, the settings that model reads and the code: a killed run, started
again with the same arguments, reuses the finished models and redoes only the
rest; a change to one model's settings reruns that model alone; and a result
from another code version is never reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from phoenix.benchmark.count_baselines import cooccurrence_scores, popular_scores
from phoenix.config import PhoenixConfig, replace, save_config
from phoenix.data.interactions import InteractionLog, LogDataError, load_interactions
from phoenix.data.protocol import NextItemSplit, hit_and_ndcg, split_next_item, user_ndcg
from phoenix.evaluation.metrics import paired_bootstrap
from phoenix.training.loop import FitResult

# phoenix_ids (Phoenix on item ids alone, see ids_only) runs when the log has actions beyond the interaction.
MODELS = ("phoenix", "sasrec", "phoenix_ids", "popular", "cooccurrence")


def code_version() -> str:
    """A hash of the `phoenix` package's source: a finished result is reused only by the same code."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for file in sorted(root.rglob("*.py")):
        digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


# What a model's result does not depend on, so that changing it reuses the result: SASRec and the
# count baselines never read Phoenix's model and training settings, and only SASRec reads [sasrec].
# Everything else (a field added later included) is in every model's fingerprint.
PHOENIX_ONLY_LOGS = ("train", "train_negatives", "listwise_weight", "recent_targets", "catalogue_weight",
                     "catalogue_negatives", "catalogue_bce_weight", "catalogue_excludes_user_items",
                     "batch_by_tokens", "sparse_weight_decay")


def model_settings(config: PhoenixConfig, name: str) -> dict:
    """The part of the config `name`'s result depends on (see PHOENIX_ONLY_LOGS)."""
    settings = dataclasses.asdict(config)
    if name != "sasrec":
        del settings["sasrec"]
    if name not in ("phoenix", "phoenix_ids"):
        del settings["model"]
        settings["logs"] = {k: v for k, v in settings["logs"].items() if k not in PHOENIX_ONLY_LOGS}
    return settings


def _fingerprints(path: Path, fmt: str, config: PhoenixConfig, splits: tuple[str, ...],
                  models: tuple[str, ...]) -> dict[str, str]:
    """Per model: the log file(s), the format, the settings it reads, the splits scored and the code,
    what a finished result depends on, hashed."""
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    stats = [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()]
    shared = [stats, fmt, list(splits), code_version()]
    return {name: hashlib.sha256(json.dumps(shared + [model_settings(config, name)], default=str).encode()
                                 ).hexdigest()[:16] for name in models}


def _write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)


def _count_baseline(scorer: Callable[[NextItemSplit, str], object]) -> Callable:
    def run(log: InteractionLog, split: NextItemSplit, config: PhoenixConfig, progress: bool, out: Path,
            splits: tuple[str, ...]) -> dict:
        return _scored(lambda which: scorer(split, which), splits)

    return run


def _scored(scores: Callable[[str], np.ndarray], splits: tuple[str, ...]) -> dict:
    """HR@10 / NDCG@10 on each split, and each user's NDCG@10 on the last one for the paired comparisons."""
    result = {}
    for which in splits:
        matrix = scores(which)
        result[which] = hit_and_ndcg(matrix)
    result[f"{splits[-1]}_user_ndcg@10"] = np.round(user_ndcg(matrix), 6).tolist()
    return result


def paired_comparisons(results: dict[str, dict], split: str = "test") -> dict[str, dict]:
    """For every pair of models: the mean per-user difference in NDCG@10 on `split`, its 95% bootstrap
    interval over users, and the ratio of the two means."""
    key = f"{split}_user_ndcg@10"
    per_user = {name: np.array(r[key]) for name, r in results.items() if key in r}
    out = {}
    for i, first in enumerate(per_user):
        for second in list(per_user)[i + 1:]:
            a, b = per_user[first], per_user[second]
            ratio = float(a.mean() / b.mean()) if b.mean() > 0 else float("nan")
            out[f"{first} - {second}"] = paired_bootstrap(a, b) | {"ratio": ratio}
    return out


def _run_sasrec(log: InteractionLog, split: NextItemSplit, config: PhoenixConfig, progress: bool, out: Path,
                splits: tuple[str, ...]) -> dict:
    from phoenix.benchmark.sasrec import sasrec_scores, train_sasrec

    validation = split.eval_sample(config.logs.valid_users, config.logs.eval_seed)
    model, fit = train_sasrec(split, config.sasrec, progress, config.mesh, validation)
    return _trained_result(fit, lambda which: sasrec_scores(model, split, which), splits)


def _run_phoenix(log: InteractionLog, split: NextItemSplit, config: PhoenixConfig, progress: bool, out: Path,
                 splits: tuple[str, ...]) -> dict:
    from phoenix.benchmark.phoenix_on_logs import phoenix_scores, train_phoenix_on_log
    from phoenix.benchmark.servable import write_servable_workdir

    model, tables, fit = train_phoenix_on_log(split, config, progress)
    action = config.model.actions.index(config.logs.interaction_action)
    result = _trained_result(fit, lambda which: phoenix_scores(model, split, tables, which, action), splits)
    workdir = write_servable_workdir(out / "phoenix_workdir", model, config, log, split, max(fit.best_step, 0))
    return result | {"workdir": str(workdir)}


def ids_only(split: NextItemSplit, config: PhoenixConfig) -> tuple[NextItemSplit, PhoenixConfig]:
    """The log as SASRec sees it: which items, in which order. History tokens carry only the
    interaction action and the model has that one head (no rating-derived actions in or out)."""
    action = config.model.actions.index(config.logs.interaction_action)
    sequences = dataclasses.replace(split.sequences, actions=split.sequences.actions[:, [action]])
    config = replace(config, model={"actions": [config.logs.interaction_action]}, logs={"rating_actions": {}})
    return dataclasses.replace(split, sequences=sequences), config


def _run_phoenix_ids(log: InteractionLog, split: NextItemSplit, config: PhoenixConfig, progress: bool,
                     out: Path, splits: tuple[str, ...]) -> dict:
    from phoenix.benchmark.phoenix_on_logs import phoenix_scores, train_phoenix_on_log

    split, config = ids_only(split, config)
    model, tables, fit = train_phoenix_on_log(split, config, progress)
    return _trained_result(fit, lambda which: phoenix_scores(model, split, tables, which, 0), splits)


def _trained_result(fit: FitResult, scores: Callable[[str], object], splits: tuple[str, ...]) -> dict:
    result = _scored(scores, splits)
    epochs = round(fit.steps / fit.steps_per_epoch, 3)  # trained epochs (validation may run every few)
    return {**result, "best_epoch": fit.best_epoch, "epochs": epochs, "stopped_by": fit.stopped_by,
            "history": fit.validations}


RUNNERS = {
    "popular": _count_baseline(popular_scores),
    "cooccurrence": _count_baseline(cooccurrence_scores),
    "sasrec": _run_sasrec,
    "phoenix": _run_phoenix,
    "phoenix_ids": _run_phoenix_ids,
}


TRAINED = ("phoenix", "phoenix_ids", "sasrec")


def _train_side_by_side(
    names: list[str], args: list[str], out: Path, jobs: int, log: Callable[[str], None]
) -> None:
    """Train `names` in up to `jobs` child processes at once, each pinned to its share of this
    process's cores (`benchmark-logs ARGS --models NAME`, its output in OUT/logs/NAME.log).
    Each child writes OUT/models/NAME.json as a run of its own would; the caller then reuses them.
    On a small CPU the models' many small kernels barely use a second core, so two models side by
    side take little longer than the slower one alone."""
    cores = sorted(os.sched_getaffinity(0))
    slots = [cores[i::jobs] for i in range(min(jobs, len(cores)))]
    (out / "logs").mkdir(parents=True, exist_ok=True)
    pending, running = list(names), {}
    try:
        while pending or running:
            for slot in [s for s in range(len(slots)) if s not in running][: len(pending)]:
                name = pending.pop(0)
                # The child pins itself before JAX starts (a fork-time hook would fork a threaded process).
                start = (f"import os, sys; os.sched_setaffinity(0, {slots[slot]}); "
                         "from phoenix.cli import main; sys.exit(main(sys.argv[1:]))")
                cmd = [sys.executable, "-c", start, "benchmark-logs", *args, "--models", name, "--no-progress"]
                with (out / "logs" / f"{name}.log").open("w") as output:
                    child = subprocess.Popen(cmd, stdout=output, stderr=subprocess.STDOUT)
                running[slot] = (name, child)
                log(f"{name}: training in a child process on cores {slots[slot]} (log: {out / 'logs' / f'{name}.log'})")
            time.sleep(1)
            for slot, (name, child) in list(running.items()):
                if child.poll() is not None:
                    del running[slot]
                    if child.returncode != 0:
                        raise ValueError(f"{name}: training failed in its child process (exit {child.returncode}); "
                                         f"see {out / 'logs' / f'{name}.log'}")
    finally:  # a failure or an interrupt leaves no child training on: a rerun redoes what did not finish
        for _, child in running.values():
            child.terminate()
            child.wait()


def settings_for_log(config: PhoenixConfig, log: InteractionLog) -> tuple[PhoenixConfig, str]:
    """The config both models train with on this kind of log ("dense" or "sparse", `LogsConfig.profile`)."""
    profile = config.logs.profile(len(log) / max(log.num_users, 1))
    return dataclasses.replace(
        config, logs=config.logs.for_profile(profile), sasrec=config.sasrec.for_profile(profile)), profile


def data_summary(log: InteractionLog, split: NextItemSplit) -> dict:
    return {
        "source": log.source,
        "users": log.num_users,
        "items": log.num_items,
        "interactions": len(log),
        "malformed_rows": log.malformed.count,
        "malformed_examples": [{"line": line, "reason": reason} for line, reason in log.malformed.examples],
        "eval_users": int(split.eval_users.size),
    }


def run_log_benchmark(
    path: str | Path, config: PhoenixConfig, out_dir: str | Path, fmt: str = "auto",
    models: tuple[str, ...] = MODELS, progress: bool = True, log: Callable[[str], None] = print,
    valid_only: bool = False, jobs: int = 1,
) -> dict:
    """Train and score `models` on the log; with `valid_only` (choosing a configuration) the test split
    is never scored, and the paired intervals are over the validation users; with `jobs` > 1 the
    trained models run side by side in child processes (`_train_side_by_side`)."""
    start = time.perf_counter()
    path, out = Path(path), Path(out_dir)
    if jobs < 1:
        raise ValueError(f"jobs: {jobs} must be at least 1")
    unknown = [m for m in models if m not in RUNNERS]
    if unknown:
        raise ValueError(f"models: unknown {unknown} (known: {', '.join(MODELS)})")
    config.check_logs()
    base_config = config
    interactions = load_interactions(path, config.logs, config.model.actions, fmt)
    if not interactions.author.any():  # a log without authors: the model (and serving) leave them out
        config = replace(config, model={"author_ids": False})
    if interactions.malformed.count:
        print(f"warning: {path}: {interactions.malformed.summary()}", file=sys.stderr)
    split = split_next_item(
        interactions, config.logs.eval_negatives, config.logs.eval_seed, config.logs.min_interactions
    )
    if split.eval_users.size == 0:
        raise LogDataError(f"{path}: no user has {config.logs.min_interactions} interactions (a training, a "
                           "validation and a test item): there is nothing to evaluate")
    action = config.model.actions.index(config.logs.interaction_action)
    if "phoenix_ids" in models and not np.delete(interactions.actions, action, axis=1).any():
        models = tuple(m for m in models if m != "phoenix_ids")
        log("phoenix_ids: left out, the log has no action beyond the interaction (Phoenix already sees ids alone)")
    config, profile = settings_for_log(config, interactions)
    data = data_summary(interactions, split) | {"profile": profile}
    log(f"{path}: {data['interactions']} interactions, {data['users']} users, {data['items']} items, "
        f"{data['eval_users']} evaluated, {data['malformed_rows']} malformed rows")
    splits = ("valid",) if valid_only else ("valid", "test")
    fingerprints = _fingerprints(path, fmt, config, splits, models)

    def saved_result(name: str) -> dict | None:
        """The finished result of `name` in OUT/models/, if its fingerprint is this run's."""
        saved = out / "models" / f"{name}.json"
        previous = json.loads(saved.read_text()) if saved.is_file() else {}
        return previous["result"] if previous.get("fingerprint") == fingerprints[name] else None

    if jobs > 1:
        to_train = [m for m in models if m in TRAINED and saved_result(m) is None]
        if to_train:
            out.mkdir(parents=True, exist_ok=True)
            save_config(base_config, out / "benchmark_config.toml")
            args = ["--interactions", str(path), "--format", fmt, "--config", str(out / "benchmark_config.toml"),
                    "--out", str(out)] + (["--valid-only"] if valid_only else [])
            _train_side_by_side(to_train, args, out, jobs, log)
    results = {}
    for name in models:
        saved = out / "models" / f"{name}.json"
        if (previous := saved_result(name)) is not None:
            results[name] = previous
            log(f"{name}: reusing the finished result in {saved}")
            continue
        if saved.is_file():
            log(f"{name}: {saved} is from another log, config or code version: running it again")
        began = time.perf_counter()
        result = RUNNERS[name](interactions, split, config, progress, out, splits)
        result["seconds"] = round(time.perf_counter() - began, 2)
        _write_json(saved, {"fingerprint": fingerprints[name], "result": result})
        results[name] = result
        log(f"{name}: " + ", ".join(f"{w} ndcg@10 {result[w]['ndcg@10']:.4f}, hr@10 {result[w]['hr@10']:.4f}"
                                     for w in splits) + f" ({result['seconds']:.0f} s)")
    report = {"data": data, "models": {}, "seconds": round(time.perf_counter() - start, 2)}
    histories = {}
    for name, result in results.items():
        report["models"][name] = {k: v for k, v in result.items() if k != "history" and "_user_" not in k}
        if "history" in result:
            histories[name] = result["history"]
    report["paired_split"] = splits[-1]
    report["paired"] = paired_comparisons(results, splits[-1])
    for pair, p in report["paired"].items():
        log(f"{pair}: {splits[-1]} NDCG@10 {p['difference']:+.4f} [{p['ci95_low']:+.4f}, {p['ci95_high']:+.4f}] "
            f"(95% bootstrap over users), ratio {p['ratio']:.3f}")
    if histories:
        from phoenix.training.plots import plot_validation_ndcg

        report["plot"] = str(plot_validation_ndcg(histories, out / "valid_ndcg.png"))
    _write_json(out / "benchmark.json", report)
    return report

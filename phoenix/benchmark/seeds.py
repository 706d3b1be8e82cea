"""Several training seeds of one log benchmark, summed up: is a model ahead on every seed, and by how much.

A run of `benchmark-logs` (its `OUT`) compares models trained with one seed;
a claim about a model should hold across seeds. `summarise_seeds` reads
finished runs that differ only in the training seed (the same log, split and
sampled negatives: checked on the runs' data summaries and per-user vectors)
and gives, for every model, its NDCG@10 on each run with the mean and spread,
and for every pair of models:

* `per_run`: each run's paired difference with its 95% bootstrap interval over
  users and the ratio of the means (what each run printed);
* `seed_mean`: the difference of the models averaged over seeds (each user's
  NDCG@10 averaged over the runs first), with its bootstrap interval over
  users, and the ratio of those means;
* `every_run_above_zero`: whether each run's interval lies above zero.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from phoenix.config import PhoenixConfig, replace
from phoenix.evaluation.metrics import paired_bootstrap


def seed_list(text: str) -> list[int]:
    """`--seeds`: two or more different integers, comma-separated."""
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers such as 0,1,2") from None
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: expected at least two different seeds")
    return seeds


def with_seed(config: PhoenixConfig, seed: int) -> PhoenixConfig:
    """The config with both trained models' seeds set; the split and its negatives (`logs.eval_seed`)
    stay the same, so runs differ only in training."""
    return replace(config, logs={"train": {"seed": seed}}, sasrec={"train": {"seed": seed}})


def run_seeds(run: Callable[[PhoenixConfig, Path], dict], config: PhoenixConfig, seeds: list[int], out: Path) -> dict:
    """`run(config, folder)` once per seed into OUT/seed-S (each resumable as a single run), then the
    summary, also written to OUT/seeds.json."""
    for seed in seeds:
        print(f"seed {seed}: {out / f'seed-{seed}'}", flush=True)
        run(with_seed(config, seed), out / f"seed-{seed}")
    summary = summarise_seeds([out / f"seed-{seed}" for seed in seeds])
    (out / "seeds.json").write_text(json.dumps(summary, indent=1))
    return summary


def _read(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (is the run finished?)")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from err


def read_run(out: str | Path) -> dict:
    """One finished run: its data summary, the split its pairs were scored on, and per model the
    summary numbers and the per-user NDCG@10 vector (from `OUT/models/NAME.json`)."""
    out = Path(out)
    report_file = out / "benchmark.json"
    report = _read(report_file)
    try:
        split, data, summaries = report.get("paired_split", "test"), report["data"], report["models"]
        scores = {name: (m["valid"]["ndcg@10"], m[split]["ndcg@10"]) for name, m in summaries.items()}
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{report_file}: not a benchmark-logs report (no {err})") from None
    models = {}
    for name, (valid, score) in scores.items():
        file = out / "models" / f"{name}.json"
        try:
            saved = _read(file)["result"]
            per_user, saved_score = saved.get(f"{split}_user_ndcg@10"), saved[split]["ndcg@10"]
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{file}: not a benchmark-logs model result (no {err})") from None
        if per_user is None:  # a count baseline of an older run, or a model not scored per user
            continue
        if saved_score != score:
            raise ValueError(f"{file}: {split} NDCG@10 {saved_score} is not the run's ({score}): the file was "
                             "rewritten by another run")
        models[name] = {"valid": valid, split: score, "per_user": np.asarray(per_user, np.float64)}
    return {"out": str(out), "data": data, "split": split, "models": models}


def _log_summary(data: dict) -> dict:
    """A run's data summary without the log's path, which two runs of one log may spell differently."""
    return {key: value for key, value in data.items() if key != "source"}


def summarise_seeds(outs: list[str | Path]) -> dict:
    """The across-seed summary of finished runs `outs` (see the module docstring)."""
    if len(outs) < 2:
        raise ValueError(f"runs: {len(outs)} given, a seed summary needs at least two")
    runs = [read_run(out) for out in outs]
    first = runs[0]
    for run in runs[1:]:
        if _log_summary(run["data"]) != _log_summary(first["data"]) or run["split"] != first["split"]:
            raise ValueError(f"{run['out']}: another log or split than {first['out']} "
                             f"({run['data']}, {run['split']} against {first['data']}, {first['split']})")
    split = first["split"]
    names = [name for name in first["models"] if all(name in run["models"] for run in runs)]
    if not names:
        raise ValueError(f"runs: no model was scored per user in every one of {[r['out'] for r in runs]}")
    for name in names:
        sizes = {run["models"][name]["per_user"].size for run in runs}
        if len(sizes) != 1:
            raise ValueError(f"{name}: scored on different numbers of users across runs ({sorted(sizes)})")

    models = {}
    for name in names:
        scores = {which: [run["models"][name][which] for run in runs] for which in ("valid", split)}
        models[name] = {f"{which}_ndcg@10": values for which, values in scores.items()} | {
            f"{split}_mean": float(np.mean(scores[split])), f"{split}_sd": float(np.std(scores[split]))}

    paired = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            per_run = []
            for run in runs:
                x, y = run["models"][a]["per_user"], run["models"][b]["per_user"]
                per_run.append(paired_bootstrap(x, y) | {"ratio": float(x.mean() / y.mean())})
            x = np.mean([run["models"][a]["per_user"] for run in runs], axis=0)  # [U]
            y = np.mean([run["models"][b]["per_user"] for run in runs], axis=0)  # [U]
            paired[f"{a} - {b}"] = {
                "per_run": per_run,
                "seed_mean": paired_bootstrap(x, y) | {"ratio": float(x.mean() / y.mean())},
                "every_run_above_zero": all(p["ci95_low"] > 0 for p in per_run),
            }
    return {"runs": [run["out"] for run in runs], "data": first["data"], "split": split, "models": models,
            "paired": paired}


def summary_lines(summary: dict) -> list[str]:
    """The summary as printed lines: each model's mean ± sd, then each pair per run and over seeds."""
    split = summary["split"]
    lines = [f"{name}: {split} NDCG@10 {m[f'{split}_mean']:.4f} ± {m[f'{split}_sd']:.4f} over "
             f"{len(m[f'{split}_ndcg@10'])} seeds ({', '.join(f'{v:.4f}' for v in m[f'{split}_ndcg@10'])})"
             for name, m in summary["models"].items()]
    for pair, p in summary["paired"].items():
        runs = "; ".join(f"{r['difference']:+.4f} [{r['ci95_low']:+.4f}, {r['ci95_high']:+.4f}] ×{r['ratio']:.3f}"
                         for r in p["per_run"])
        mean = p["seed_mean"]
        lines.append(f"{pair}: {split} NDCG@10 per seed {runs}; seed mean {mean['difference']:+.4f} "
                     f"[{mean['ci95_low']:+.4f}, {mean['ci95_high']:+.4f}] ×{mean['ratio']:.3f}"
                     f"{'' if p['every_run_above_zero'] else ' (not above zero on every seed)'}")
    return lines

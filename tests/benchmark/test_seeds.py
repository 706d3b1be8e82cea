"""Summing up several seeds' benchmark runs: per-seed and seed-mean differences, and refusing mixed runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from phoenix.benchmark.seeds import run_seeds, summarise_seeds
from phoenix.cli import main
from phoenix.config import PhoenixConfig, load_config

DATA = {"source": "log.txt", "users": 500, "items": 90, "interactions": 4000, "eval_users": 500}


def write_run(out: Path, per_user: dict[str, np.ndarray], data: dict = DATA) -> Path:
    """A finished run's files as `benchmark-logs` leaves them: benchmark.json and models/NAME.json."""
    (out / "models").mkdir(parents=True)
    models = {}
    for name, ndcg in per_user.items():
        result = {"valid": {"ndcg@10": float(ndcg.mean()) + 0.05}, "test": {"ndcg@10": float(ndcg.mean())},
                  "test_user_ndcg@10": ndcg.tolist()}
        (out / "models" / f"{name}.json").write_text(json.dumps({"fingerprint": "f", "result": result}))
        models[name] = {k: v for k, v in result.items() if "_user_" not in k}
    (out / "benchmark.json").write_text(json.dumps({"data": data, "models": models, "paired_split": "test"}))
    return out


def seed_runs(tmp_path: Path, shifts: list[float]) -> list[Path]:
    """Runs where phoenix = sasrec + shift on every user, sasrec differing by seed."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 500)
    runs = []
    for seed, shift in enumerate(shifts):
        sasrec = np.clip(base + rng.normal(0, 0.05, 500), 0, 1)
        runs.append(write_run(tmp_path / f"seed-{seed}", {"phoenix": sasrec + shift, "sasrec": sasrec}))
    return runs


def test_each_seed_and_the_seed_mean_give_the_difference_and_its_interval(tmp_path):
    summary = summarise_seeds(seed_runs(tmp_path, [0.02, 0.04, 0.03]))
    pair = summary["paired"]["phoenix - sasrec"]
    assert [round(r["difference"], 6) for r in pair["per_run"]] == [0.02, 0.04, 0.03]
    assert all(r["ci95_low"] == pytest.approx(r["difference"]) for r in pair["per_run"])  # a constant shift
    assert pair["seed_mean"]["difference"] == pytest.approx(0.03)
    assert pair["every_run_above_zero"]
    assert summary["models"]["phoenix"]["test_mean"] == pytest.approx(
        np.mean(summary["models"]["phoenix"]["test_ndcg@10"]))
    assert pair["per_run"][1]["ratio"] > pair["per_run"][2]["ratio"] > pair["per_run"][0]["ratio"] > 1


def test_a_seed_that_is_not_ahead_is_said(tmp_path):
    summary = summarise_seeds(seed_runs(tmp_path, [0.02, -0.01, 0.03]))
    pair = summary["paired"]["phoenix - sasrec"]
    assert not pair["every_run_above_zero"] and pair["per_run"][1]["ci95_high"] < 0
    assert pair["seed_mean"]["difference"] == pytest.approx(0.04 / 3)


def test_runs_on_another_log_or_a_rewritten_result_are_refused(tmp_path):
    first = write_run(tmp_path / "a", {"phoenix": np.full(500, 0.3), "sasrec": np.full(500, 0.2)})
    other = write_run(tmp_path / "b", {"phoenix": np.full(500, 0.3), "sasrec": np.full(500, 0.2)},
                      DATA | {"interactions": 4001})
    with pytest.raises(ValueError, match="another log or split"):
        summarise_seeds([first, other])
    again = write_run(tmp_path / "c", {"phoenix": np.full(500, 0.3), "sasrec": np.full(500, 0.2)})
    result = json.loads((again / "models" / "sasrec.json").read_text())
    result["result"]["test"]["ndcg@10"] = 0.25
    (again / "models" / "sasrec.json").write_text(json.dumps(result))
    with pytest.raises(ValueError, match="sasrec.json.*rewritten by another run"):
        summarise_seeds([first, again])
    with pytest.raises(ValueError, match="at least two"):
        summarise_seeds([first])


def test_run_seeds_trains_each_seed_in_its_folder_and_writes_the_summary(tmp_path):
    seen = []

    def run(config: PhoenixConfig, out: Path) -> dict:
        seen.append((config.logs.train.seed, config.sasrec.train.seed, config.logs.eval_seed, out.name))
        rng = np.random.default_rng(config.logs.train.seed)
        write_run(out, {"phoenix": rng.uniform(0.3, 0.4, 500), "sasrec": rng.uniform(0.2, 0.3, 500)})
        return {}

    config = load_config(Path(__file__).resolve().parents[2] / "configs" / "logs.toml")
    summary = run_seeds(run, config, [3, 5], tmp_path)
    assert seen == [(3, 3, config.logs.eval_seed, "seed-3"), (5, 5, config.logs.eval_seed, "seed-5")]
    assert json.loads((tmp_path / "seeds.json").read_text()) == json.loads(json.dumps(summary))
    assert summary["paired"]["phoenix - sasrec"]["every_run_above_zero"]


def test_the_cli_names_a_missing_or_damaged_run_in_one_line(tmp_path, capsys):
    run = write_run(tmp_path / "a", {"phoenix": np.full(500, 0.3), "sasrec": np.full(500, 0.2)})
    other = write_run(tmp_path / "b", {"phoenix": np.full(500, 0.3), "sasrec": np.full(500, 0.2)})
    (other / "models" / "sasrec.json").write_text('{"result": {"valid": {}}}')
    broken = write_run(tmp_path / "c", {"phoenix": np.full(500, 0.3)})
    (broken / "benchmark.json").write_text('{"data": {}}')
    for damaged, message in ((tmp_path / "missing", "missing/benchmark.json: not found"),
                             (other, "b/models/sasrec.json: not a benchmark-logs model result"),
                             (broken, "c/benchmark.json: not a benchmark-logs report")):
        assert main(["benchmark-seeds", str(run), str(damaged)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err

"""`phoenix benchmark-logs` end to end on a small synthetic log: JSON, plot, resume, learning."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from helpers import SMALL_MODEL

from phoenix.benchmark.phoenix_on_logs import phoenix_scores
from phoenix.benchmark.run import ids_only, run_log_benchmark
from phoenix.cli import main
from phoenix.config import PhoenixConfig, replace, save_config
from phoenix.data.interactions import load_interactions
from phoenix.data.log_examples import HashTables
from phoenix.data.protocol import hit_and_ndcg, split_next_item
from phoenix.data.synthetic_log import synthetic_interactions
from phoenix.serving.batch_scoring import score_files
from phoenix.workdir import load_model

SMALL_LOGS = {"eval_negatives": 50,
              "train": {"num_epochs": 10, "patience": 10, "batch_size": 16, "learning_rate": 3e-3, "warmup_steps": 5}}
FOUR = ("phoenix", "sasrec", "popular", "cooccurrence")  # phoenix_ids has its own test
SMALL_SASREC = {"model_dim": 16, "history_len": 16, "train": {"num_epochs": 4, "patience": 4, "batch_size": 32}}


def _config() -> PhoenixConfig:
    model = {**SMALL_MODEL.__dict__, "history_len": 16, "post_id_dropout": 0.0}
    return replace(PhoenixConfig(), model=model, logs=SMALL_LOGS, sasrec=SMALL_SASREC)


@pytest.mark.slow  # trains Phoenix and SASRec end to end: about a minute
def test_benchmark_reports_every_model_and_phoenix_learns(tmp_path):
    log = tmp_path / "log.csv"
    pacsv.write_csv(synthetic_interactions(150, 300, 3000, seed=1, num_topics=10), log)
    lines = []
    report = run_log_benchmark(log, _config(), tmp_path / "out", models=FOUR, progress=False, log=lines.append)
    assert report["data"]["interactions"] == 3000 and report["data"]["users"] == 150
    assert report["data"]["malformed_rows"] == 0 and report["data"]["eval_users"] == 150
    assert report["data"]["profile"] == "dense"  # 20 interactions per user
    assert set(report["models"]) == {"phoenix", "sasrec", "popular", "cooccurrence"}
    for result in report["models"].values():
        for which in ("valid", "test"):
            assert 0 <= result[which]["ndcg@10"] <= result[which]["hr@10"] <= 1
        assert result["seconds"] >= 0
    # The synthetic users walk their topic's items in order: co-occurrence nearly solves it, and
    # Phoenix must be far above chance (NDCG@10 about 0.09 for a random scorer with 50 negatives).
    assert report["models"]["cooccurrence"]["test"]["hr@10"] > 0.7
    assert report["models"]["phoenix"]["test"]["ndcg@10"] > 0.2
    assert report["models"]["phoenix"]["epochs"] == 10 and (tmp_path / "out" / "valid_ndcg.png").stat().st_size > 0
    assert len(report["paired"]) == 6  # every pair of the four models
    versus = report["paired"]["phoenix - popular"]
    assert versus["difference"] == pytest.approx(
        report["models"]["phoenix"]["test"]["ndcg@10"] - report["models"]["popular"]["test"]["ndcg@10"], abs=1e-5)
    assert 0 < versus["ci95_low"] < versus["difference"] < versus["ci95_high"]  # Phoenix learned, for sure
    assert any(line.startswith("phoenix - sasrec: test NDCG@10") for line in lines)

    assert_the_workdir_serves_what_was_scored(log, tmp_path, report["models"]["phoenix"])

    # A rerun with the same arguments reuses every finished model instead of training again.
    lines.clear()
    again = run_log_benchmark(log, _config(), tmp_path / "out", models=FOUR, progress=False, log=lines.append)
    assert sum("reusing" in line for line in lines) == 4
    assert again["models"] == report["models"]


def test_cli_prints_the_report_as_its_last_line(tmp_path, capsys):
    log = tmp_path / "log.tsv"
    table = synthetic_interactions(40, 200, 400, seed=2)
    pacsv.write_csv(table, log, pacsv.WriteOptions(delimiter="\t"))
    with log.open("a") as f:
        f.write("41\n")  # one malformed row
    config_path = tmp_path / "small.toml"
    save_config(_config(), config_path)
    code = main(["benchmark-logs", "--interactions", str(log), "--config", str(config_path), "--out",
                 str(tmp_path / "out"), "--models", "popular,cooccurrence", "--no-progress"])
    out = capsys.readouterr()
    assert code == 0
    report = json.loads(out.out.strip().splitlines()[-1])
    assert set(report["models"]) == {"popular", "cooccurrence"}
    assert report["data"]["malformed_rows"] == 1 and report["data"]["malformed_examples"][0]["line"] == 402
    assert report["data"]["profile"] == "sparse"  # 10 interactions per user: the sparse settings
    assert "1 malformed rows" in out.err

    # Choosing a configuration: --valid-only never scores the test split, even for finished models.
    code = main(["benchmark-logs", "--interactions", str(log), "--config", str(config_path), "--out",
                 str(tmp_path / "out"), "--models", "popular,cooccurrence", "--no-progress", "--valid-only"])
    tuning = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and tuning["paired_split"] == "valid"
    for name, result in tuning["models"].items():
        assert "test" not in result and result["valid"] == report["models"][name]["valid"]
    saved = json.loads((tmp_path / "out" / "models" / "popular.json").read_text())["result"]
    assert "test" not in saved and "valid_user_ndcg@10" in saved


def test_the_kind_of_log_sets_what_each_model_trains_with(tmp_path, monkeypatch):
    from phoenix.benchmark import phoenix_on_logs, sasrec

    class Trained(Exception):
        pass

    seen = {}

    def phoenix_trainer(split, config, progress):
        seen["phoenix"] = config.logs.train
        raise Trained

    def sasrec_trainer(split, config, progress, mesh_config, validation):
        seen["sasrec"] = config
        raise Trained

    monkeypatch.setattr(phoenix_on_logs, "train_phoenix_on_log", phoenix_trainer)
    monkeypatch.setattr(sasrec, "train_sasrec", sasrec_trainer)
    config = replace(_config(), logs={"sparse_weight_decay": 0.3, "sparse_below": 15.0},
                     sasrec={"sparse_history_len": 8, "sparse_dropout_rate": 0.4})
    for per_user, sparse in ((10, True), (20, False)):  # interactions per user
        log = tmp_path / f"log{per_user}.csv"
        pacsv.write_csv(synthetic_interactions(40, 200, 40 * per_user, seed=2), log)
        for name in ("phoenix", "sasrec"):
            with pytest.raises(Trained):
                run_log_benchmark(log, config, tmp_path / "out", models=(name,), progress=False, log=lambda _: None)
        assert seen["phoenix"].weight_decay == (0.3 if sparse else config.logs.train.weight_decay)
        assert seen["phoenix"].learning_rate == config.logs.train.learning_rate
        assert (seen["sasrec"].history_len, seen["sasrec"].dropout_rate) == ((8, 0.4) if sparse else (16, 0.2))


def test_cli_names_a_missing_log(tmp_path, capsys):
    code = main(["benchmark-logs", "--interactions", str(tmp_path / "nope.csv"), "--out", str(tmp_path)])
    assert code == 2 and "nope.csv: no such file" in capsys.readouterr().err


def assert_the_workdir_serves_what_was_scored(log, tmp_path, result):
    """The left workdir holds the scored parameters, and `phoenix score` serves them in the log's ids."""
    workdir = tmp_path / "out" / "phoenix_workdir"
    assert result["workdir"] == str(workdir)
    model, config, _ = load_model(workdir)
    assert not config.model.author_ids  # the log has no authors: trained and served without them
    split = split_next_item(load_interactions(log, config.logs, config.model.actions), config.logs.eval_negatives)
    action = config.model.actions.index(config.logs.interaction_action)
    logits = phoenix_scores(model, split, HashTables.build(split, config.model), "test", action)  # [E, 1+n]
    assert hit_and_ndcg(logits) == result["test"]

    assert main(["history", "--workdir", str(workdir), "--out", str(tmp_path / "requests.parquet")]) == 0
    score_files(workdir, [tmp_path / "requests.parquet"], tmp_path / "scores", progress=False)
    scores = pq.read_table(tmp_path / "scores").to_pydict()
    served = dict(zip(scores["user_id"], scores[f"p_{config.logs.interaction_action}"]))  # one test item each
    users = split.model_ids["user"][split.eval_users]
    expected = 1 / (1 + np.exp(-logits[:, 0]))  # the target is column 0
    np.testing.assert_allclose([served[u] for u in users], expected, atol=1e-5)


def test_a_result_from_another_code_version_is_run_again(tmp_path, monkeypatch):
    log = tmp_path / "log.csv"
    pacsv.write_csv(synthetic_interactions(40, 200, 400, seed=2), log)
    lines = []
    run_log_benchmark(log, _config(), tmp_path / "out", models=("popular",), progress=False, log=lines.append)
    run_log_benchmark(log, _config(), tmp_path / "out", models=("popular",), progress=False, log=lines.append)
    assert sum("reusing" in line for line in lines) == 1  # same code: reused
    lines.clear()
    monkeypatch.setattr("phoenix.benchmark.run.code_version", lambda: "another-version")
    run_log_benchmark(log, _config(), tmp_path / "out", models=("popular",), progress=False, log=lines.append)
    assert not any("reusing" in line for line in lines)
    assert any("another log, config or code version: running it again" in line for line in lines)


def test_changing_one_models_settings_reruns_that_model_alone(tmp_path, monkeypatch):
    from phoenix.benchmark import run

    trained = []

    def fake(name):  # a trained model's runner, counting its runs: the popularity scores under its name
        def runner(log, split, config, progress, out, splits):
            trained.append(name)
            return run.RUNNERS["popular"](log, split, config, progress, out, splits)
        return runner

    monkeypatch.setattr(run, "RUNNERS", run.RUNNERS | {"phoenix": fake("phoenix"), "sasrec": fake("sasrec")})
    log = tmp_path / "log.csv"
    pacsv.write_csv(synthetic_interactions(40, 200, 400, seed=2), log)
    models = ("phoenix", "sasrec", "popular")

    def rerun(config: PhoenixConfig) -> list[str]:
        trained.clear()
        lines = []
        run_log_benchmark(log, config, tmp_path / "out", models=models, progress=False, log=lines.append)
        return sorted(trained + ["popular"] * (not any(line.startswith("popular: reusing") for line in lines)))

    config = _config()
    assert rerun(config) == ["phoenix", "popular", "sasrec"]
    assert rerun(config) == []
    assert rerun(replace(config, sasrec={"train": {"patience": 7}})) == ["sasrec"]
    assert rerun(replace(config, sasrec={"train": {"patience": 7}}, model={"num_layers": 2},
                         logs={"listwise_weight": 0.5, "train": {"learning_rate": 1e-3}})) == ["phoenix"]
    assert rerun(replace(config, logs={"eval_negatives": 40})) == ["phoenix", "popular", "sasrec"]  # the split


def rated_log(tmp_path):
    log = tmp_path / "log.csv"
    table = synthetic_interactions(150, 300, 3000, seed=1, num_topics=10)
    pacsv.write_csv(table.append_column("rating", pa.array(np.arange(3000) % 5 + 1)), log)  # rating actions too
    return log


def test_phoenix_on_ids_alone_sees_what_sasrec_sees(tmp_path):
    config = _config()
    split = split_next_item(load_interactions(rated_log(tmp_path), config.logs, config.model.actions), 50)
    assert split.sequences.actions[:, 1:].any()  # the full log has rating-derived actions ...
    ids_split, ids_config = ids_only(split, config)
    assert ids_config.model.actions == ("click",) and ids_config.logs.rating_actions == {}
    assert ids_split.sequences.actions.shape == (3000, 1) and ids_split.sequences.actions.all()  # ... ids don't


@pytest.mark.slow
def test_phoenix_on_ids_alone_learns(tmp_path):
    report = run_log_benchmark(rated_log(tmp_path), _config(), tmp_path / "out", models=("phoenix_ids",),
                               progress=False, log=lambda _: None)
    assert report["models"]["phoenix_ids"]["test"]["ndcg@10"] > 0.2  # chance is about 0.09


def test_a_log_with_nothing_to_evaluate_is_refused_before_any_training(tmp_path, capsys):
    log = tmp_path / "short.csv"
    log.write_text("user_id,item_id\n" + "".join(f"{u},{i}\n" for u in range(1, 20) for i in (1, 2)))
    code = main(["benchmark-logs", "--interactions", str(log), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "short.csv: no user has 3 interactions" in err and not (tmp_path / "out").exists()


@pytest.mark.slow  # two child processes start JAX and train: about 40 s
def test_models_trained_side_by_side_land_where_a_sequential_run_finds_them(tmp_path):
    log = tmp_path / "log.csv"
    pacsv.write_csv(synthetic_interactions(60, 150, 900, seed=3, num_topics=5), log)
    config = replace(_config(), logs={"train": {"num_epochs": 2}}, sasrec={"train": {"num_epochs": 2}})
    lines = []
    report = run_log_benchmark(log, config, tmp_path / "out", models=("phoenix", "sasrec", "popular"),
                               progress=False, log=lines.append, valid_only=True, jobs=2)
    assert sum("training in a child process on cores" in line for line in lines) == 2
    for name in ("phoenix", "sasrec"):
        assert any(line.startswith(f"{name}: reusing") for line in lines)  # the child's result, not a retrain
        assert report["models"][name]["epochs"] == 2 and "test" not in report["models"][name]
        assert "valid ndcg@10" in (tmp_path / "out" / "logs" / f"{name}.log").read_text()
    with pytest.raises(ValueError, match="jobs: 0 must be at least 1"):
        run_log_benchmark(log, config, tmp_path / "out", progress=False, log=lines.append, jobs=0)


def test_phoenix_on_ids_alone_is_left_out_of_a_log_without_other_actions(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("".join(f"{u} {10 * u + i}\n" for u in range(1, 21) for i in range(6)))  # user item, no ratings
    lines = []
    report = run_log_benchmark(log, _config(), tmp_path / "out", "sasrec", models=("phoenix_ids", "popular"),
                               progress=False, log=lines.append)
    assert set(report["models"]) == {"popular"}
    assert any(line.startswith("phoenix_ids: left out") for line in lines)

import json

import pytest

from phoenix.cli import main


def test_eval_json_reports_every_head_with_oracle_ceiling_and_baseline(trained_workdir, capsys):
    assert main(["eval", "--workdir", str(trained_workdir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["heads"]) == 15
    for head in report["heads"].values():
        assert {"auc", "oracle_auc", "ceiling_auc", "baseline_auc", "logloss", "rce"} <= set(head)
        assert 0 <= head["auc"] <= 1 and head["logloss"] > 0
        if head["positive_rate"] > 0:  # the observed rate cancels: model mean over truth mean
            assert head["calibration_to_truth"] == pytest.approx(head["calibration"] / head["oracle_calibration"])
            assert head["calibration_low"] < head["calibration"] < head["calibration_high"]
    mean = report["mean"]
    assert mean["oracle_auc"] > mean["ceiling_auc"] > mean["baseline_auc"]
    assert mean["ceiling_auc_gap"] == mean["ceiling_auc"] - mean["auc"]
    assert main(["eval", "--workdir", str(trained_workdir)]) == 0
    table = capsys.readouterr().out
    assert {"ceiling", "c95_lo", "c95_hi", "to_truth"} <= set(table.splitlines()[0].split())
    assert "gap to the ceiling" in table


def test_errors_name_the_file(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "missing.toml"), "--workdir", str(tmp_path)]) == 2
    assert "missing.toml: config file not found" in capsys.readouterr().err
    assert main(["eval", "--workdir", str(tmp_path / "nothing")]) == 2
    assert "run.json" in capsys.readouterr().err


def test_world_command_writes_parquet(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[world]\nnum_users = 50\nnum_authors = 10\nnum_posts = 100\nimpressions_per_user = 10.0\n")
    assert main(["world", "--config", str(config), "--out", str(tmp_path / "w")]) == 0
    counts = json.loads(capsys.readouterr().out)["impressions"]
    assert counts["train"] > counts["test"] > 0
    assert (tmp_path / "w" / "impressions" / "test.parquet").is_file()


def test_unknown_command_fails():
    with pytest.raises(SystemExit):
        main(["fly"])


def test_index_and_retrieve_commands(retrieval_workdir, micro_world, tmp_path, capsys):
    out = tmp_path / "idx.npz"
    corpus = micro_world / "posts.parquet"
    assert main(["index", "--workdir", str(retrieval_workdir), "--corpus", str(corpus), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["items"] == 2000 and out.is_file()
    assert main(["retrieve", "--workdir", str(retrieval_workdir), "--index", str(out), "--user", "5", "-k", "20"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert len(results) == 20 and [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    assert main(["retrieve", "--workdir", str(retrieval_workdir), "--user", "100000", "-k", "5"]) == 2
    assert "user_id: 100000 is not a user of this world" in capsys.readouterr().err
    assert main(["retrieve", "--workdir", str(retrieval_workdir), "--user", "5", "-k", "2001"]) == 2
    assert "k: 2001 is larger than the corpus (2000 items)" in capsys.readouterr().err
    assert main(["index", "--workdir", str(retrieval_workdir), "--corpus", str(tmp_path / "none.parquet")]) == 2
    assert "none.parquet: corpus file not found" in capsys.readouterr().err
    missing = str(tmp_path / "x.npz")
    assert main(["retrieve", "--workdir", str(retrieval_workdir), "--index", missing, "--user", "5"]) == 2
    assert "x.npz: index file not found" in capsys.readouterr().err

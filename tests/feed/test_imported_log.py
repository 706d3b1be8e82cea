"""A workdir trained on an imported log (string ids, no truth): evaluated, exported and served."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from phoenix import Ranker
from phoenix.cli import _strict_json, main
from phoenix.data.dataset import SPLITS, read_impressions
from phoenix.data.histories import history_requests
from phoenix.data.ids import encode_id
from phoenix.evaluation.ranker import evaluate_workdir
from phoenix.serving.batch_scoring import score_files
from phoenix.serving.inputs import CandidatePost
from phoenix.serving.service import RankerService


def test_evaluation_without_truth_reports_the_model_beside_popularity(imported_workdir):
    report = evaluate_workdir(imported_workdir)
    assert "oracle_auc" not in report["mean"] and set(report["heads"]) == set(read_impressions(
        report["data"]).actions)
    for head in report["heads"].values():
        assert {"auc", "gauc", "baseline_auc", "baseline_gauc", "logloss", "rce", "calibration"} <= set(head)
    assert report["mean"]["auc"] > report["mean"]["baseline_auc"]  # personalised beats popularity, even short
    ranking = report["ranking"]
    assert ranking["groups"] == "user-day" and ranking["ndcg_groups"] > 100
    assert 0 < ranking["baseline_ndcg@10"] < ranking["model_ndcg@10"] <= 1


@pytest.fixture(scope="module")
def test_requests(imported_workdir, imported_log, tmp_path_factory):
    out = tmp_path_factory.mktemp("history") / "requests.parquet"
    assert main(["history", "--workdir", str(imported_workdir), "--out", str(out), "--split", "test"]) == 0
    return pq.read_table(out)


def test_history_export_holds_only_what_came_before_the_split(test_requests, imported_log):
    log = read_impressions(imported_log[1])
    test_start = log.time_s[log.split == SPLITS.index("test")].min()
    users = test_requests.column("user_id").to_numpy()
    assert np.array_equal(np.sort(users), np.unique(log.user_id[log.split == SPLITS.index("test")]))
    row = int(np.argmax(test_requests.column("history_post_id").combine_chunks().value_lengths().to_numpy()))
    user = users[row]
    mine = (log.user_id == user) & log.labels.any(axis=1) & (log.time_s < test_start)
    np.testing.assert_array_equal(test_requests.column("history_post_id")[row].as_py(), log.post_id[mine][-16:])
    shown = (log.user_id == user) & (log.split == SPLITS.index("test"))
    np.testing.assert_array_equal(test_requests.column("candidate_post_id")[row].as_py(), log.post_id[shown])
    assert table_equal_history(history_requests(log, "test", 16), test_requests)


def table_equal_history(a, b):
    return a.select(["user_id", "history_post_id"]).equals(b.select(["user_id", "history_post_id"]))


def test_a_user_scores_the_same_through_rank_score_and_the_model(imported_workdir, imported_log, test_requests,
                                                                 tmp_path):
    pq.write_table(test_requests.slice(0, 5), tmp_path / "requests.parquet")
    score_files(imported_workdir, [tmp_path / "requests.parquet"], tmp_path / "scores", progress=False)
    scores = pq.read_table(tmp_path / "scores")
    ranker = Ranker.load(imported_workdir, retrieval=False)
    request = test_requests.slice(0, 1).to_pylist()[0]
    log = read_impressions(imported_log[1])
    user = int(request["user_id"])
    world_user = next(u for u in range(1, 401) if encode_id(f"u{u}", "u") == user)
    first_test = int(log.time_s[(log.user_id == user) & (log.split == SPLITS.index("test"))].min())
    query = ranker.user(f"u{world_user}", at_s=first_test)
    assert [h.post_id for h in query.history] == request["history_post_id"]
    assert query.seen_post_ids == set(log.post_id[(log.user_id == user) & (log.time_s < first_test)].tolist())

    raw = {encode_id(f"p{p}", "p"): f"p{p}" for p in range(1, 2001)}
    posts = list(dict.fromkeys(request["candidate_post_id"]))  # a post shown twice is one candidate
    authors = dict(zip(request["candidate_post_id"], request["candidate_author_id"]))
    surfaces = dict(zip(request["candidate_post_id"], request["candidate_surface"]))
    candidates = [{"post_id": raw[p], "author_id": authors[p], "created_s": first_test - 60, "surface": surfaces[p]}
                  for p in posts]
    feed = ranker.rank(query, candidates)
    assert feed.items and all(isinstance(item.post_id, str) for item in feed.items)  # the caller's own ids

    mine = scores.filter(scores.column("user_id").to_numpy() == user).to_pydict()
    by_file = {p: [mine[f"p_{a}"][i] for a in ranker.service.config.actions] for i, p in enumerate(mine["post_id"])}
    service = RankerService.from_workdir(imported_workdir, keep_recent_history=True)
    direct = service.score(user, query.history, [CandidatePost(p, authors[p], surfaces[p]) for p in posts])
    for item in feed.items:
        model_id = encode_id(item.post_id, "p")
        probs = list(item.action_probs.values())
        np.testing.assert_allclose(probs, by_file[model_id], atol=1e-5)
        np.testing.assert_allclose(probs, direct[posts.index(model_id)], atol=1e-5)


def test_eval_json_is_strict_json_with_null_for_undefined_metrics(imported_workdir, capsys):
    assert main(["eval", "--workdir", str(imported_workdir), "--json"]) == 0
    text = capsys.readouterr().out
    report = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))
    assert report["heads"]["favorite"]["gauc"] > 0.5
    assert _strict_json({"auc": float("nan"), "heads": [1.0, float("nan")]}) == {"auc": None, "heads": [1.0, None]}

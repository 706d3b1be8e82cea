import json
import re

import numpy as np
import pytest

from phoenix import Ranker
from phoenix.cli import main
from phoenix.data.ids import encode_id

NOW = 14 * 86400


def user_dict(**extra):
    return {
        "user_id": 3,
        "request_time_s": NOW,
        "history": [{"post_id": 11, "author_id": 4, "actions": ["favorite", "click"]},
                    {"post_id": 12, "author_id": 5, "actions": ["not_interested"]}],
        "following": [4],
        "blocked": [66],
        **extra,
    }


def candidates():
    fresh = [{"post_id": 100 + i, "author_id": 1 + i % 20, "created_s": NOW - 3600 * (1 + i % 40)} for i in range(60)]
    return fresh + [
        {"post_id": 900, "author_id": 66, "created_s": NOW - 60},  # blocked author
        {"post_id": 901, "author_id": 7, "created_s": NOW - 72 * 3600},  # too old
        {"post_id": 100, "author_id": 1, "created_s": NOW - 3600},  # duplicate
        {"post_id": 902, "author_id": 8, "created_s": NOW - 60, "reply_to_post_id": 5},  # unfollowed reply
    ]


@pytest.fixture(scope="module")
def ranker(trained_workdir):
    return Ranker.load(trained_workdir)


def test_rank_returns_an_explained_feed(ranker):
    feed = ranker.rank(user_dict(), candidates())
    assert len(feed.items) == 35  # default result size
    scores = [i.final_score for i in feed.items]
    assert scores == sorted(scores, reverse=True)
    for item in feed.items:
        assert len(item.action_probs) == 15
        multipliers = item.diversity_multiplier * item.network_multiplier
        assert item.final_score == pytest.approx(item.weighted_score * multipliers)
        assert item.network_multiplier == (1.0 if item.author_id == 4 else 0.75)
    stages = {d.post_id: d.stage for d in feed.dropped}
    assert stages[900] == "blocked_muted_authors" and stages[901] == "age"
    assert stages[902] == "unfollowed_replies_reposts"
    assert sum(d.stage == "duplicates" for d in feed.dropped) == 1
    assert len(feed.items) + len(feed.dropped) == len(candidates())


def test_probabilities_do_not_depend_on_the_other_candidates(ranker):
    full = {i.post_id: i.action_probs for i in ranker.rank(user_dict(), candidates()).items}
    some = [c for c in candidates()[:60] if c["post_id"] in list(full)[:3]]
    alone = ranker.rank(user_dict(), some)
    for item in alone.items:
        np.testing.assert_allclose(list(item.action_probs.values()), list(full[item.post_id].values()), atol=1e-6)


def test_bad_input_names_the_field(ranker):
    bad_history = user_dict(history=[{"post_id": 1, "author_id": 2, "actions": ["like"]}])
    with pytest.raises(ValueError, match=r"user.history\[0\].actions: unknown action 'like'"):
        ranker.rank(bad_history, candidates())
    with pytest.raises(ValueError, match=r"candidates\[1\].author_id"):
        ranker.rank(user_dict(), [{"post_id": 1, "author_id": 2}, {"post_id": 2, "author_id": 2.5}])


def test_rank_command_prints_the_feed_as_json(trained_workdir, tmp_path, capsys):
    (tmp_path / "u.json").write_text(json.dumps(user_dict()))
    (tmp_path / "c.json").write_text(json.dumps(candidates()[:10]))
    args = ["rank", "--workdir", str(trained_workdir), "--user-file", str(tmp_path / "u.json"),
            "--candidates-file", str(tmp_path / "c.json")]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["user_id"] == 3 and len(out["items"]) == 9  # post 102 is by author 3, the viewer
    assert out["dropped"] == [
        {"post_id": 102, "stage": "self_posts", "reason": "the viewer's own post", "source": "caller"}
    ]
    (tmp_path / "c.json").write_text("[{")
    assert main(args) == 2
    assert "c.json: not valid JSON" in capsys.readouterr().err


def test_string_ids_are_encoded_like_an_import_and_answered_back_as_given(ranker):
    now = 14 * 86400
    posts = [{"post_id": f"post-{i}", "author_id": f"author-{i % 3}", "created_s": now - 600} for i in range(5)]
    feed = ranker.rank({"user_id": "viewer-1", "request_time_s": now}, posts)
    assert feed.user_id == "viewer-1" and sorted(i.post_id for i in feed.items) == [p["post_id"] for p in posts]
    assert {i.author_id for i in feed.items} == {"author-0", "author-1", "author-2"}
    by_int = ranker.rank({"user_id": encode_id("viewer-1", "u"), "request_time_s": now},
                         [dict(p, post_id=encode_id(p["post_id"], "p"), author_id=encode_id(p["author_id"], "a"))
                          for p in posts])
    assert [i.final_score for i in by_int.items] == [i.final_score for i in feed.items]  # one id, two spellings


@pytest.mark.parametrize("candidate, message", [
    ({"post_id": 5, "author_id": 2, "in_network": "no"}, r"candidates\[0\].in_network: expected true, false or null"),
    ({"post_id": 5, "author_id": 2, "surface": 2.7}, r"candidates\[0\].surface: expected an integer surface"),
    ({"post_id": 5, "author_id": 2, "surface": "3"}, r"candidates\[0\].surface: expected an integer surface"),
    ({"post_id": 5, "author_id": 2, "surface": True}, r"candidates\[0\].surface: expected an integer surface"),
    ({"post_id": 5, "author_id": 2, "surface": 99}, r"candidate_surface: surfaces must be in \[0, 16\)"),
])
def test_nothing_is_coerced_and_the_cli_says_which_field_in_one_line(ranker, trained_workdir, tmp_path, capsys,
                                                                      candidate, message):
    candidate = {**candidate, "created_s": NOW - 60}
    with pytest.raises(ValueError, match=message):
        ranker.rank(user_dict(), [candidate])
    (tmp_path / "u.json").write_text(json.dumps(user_dict()))
    (tmp_path / "c.json").write_text(json.dumps([candidate]))
    code = main(["rank", "--workdir", str(trained_workdir), "--user-file", str(tmp_path / "u.json"),
                 "--candidates-file", str(tmp_path / "c.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and re.search(message, err)


def test_options_of_the_wrong_type_are_named(ranker):
    with pytest.raises(ValueError, match="user.options: expected an object"):
        ranker.rank(user_dict(options=[1]), [])
    with pytest.raises(ValueError, match="user.options: unknown option.s. sesion_id"):  # a typo is not ignored
        ranker.rank(user_dict(options={"sesion_id": "s1"}), [])
    with pytest.raises(ValueError, match="user.options.session_id: expected a string, got 5"):  # 5 is not "5"
        ranker.rank(user_dict(options={"session_id": 5}), [])


def test_candidates_must_be_a_list(ranker):
    with pytest.raises(ValueError, match="candidates: expected a list, got int"):
        ranker.rank(user_dict(), 5)

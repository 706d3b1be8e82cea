"""The log loader: every format, raw string ids, actions from ratings or columns, and its error reports."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from phoenix.config import DEFAULT_ACTIONS, LogsConfig
from phoenix.data.interactions import LogDataError, load_interactions

ACTIONS = DEFAULT_ACTIONS
CLICK, LIKE, SHARE, NOT_INTERESTED = (ACTIONS.index(a) for a in ("click", "favorite", "share", "not_interested"))


def load(path, fmt="auto"):
    return load_interactions(path, LogsConfig(), ACTIONS, fmt)


def test_csv_with_string_ids_ratings_and_time_order(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,author_id,rating,timestamp\n"
                    "bob,m9,a1,5,30\nalice,m2,a2,1,10\nbob,m2,a2,4,20\n")
    log = load(path)
    assert list(log.user_ids) == ["alice", "bob"] and list(log.item_ids) == ["m2", "m9"]
    # Sorted by timestamp: alice m2 (10), bob m2 (20), bob m9 (30).
    assert log.user.tolist() == [1, 2, 2] and log.item.tolist() == [1, 1, 2]
    assert log.author.tolist() == [2, 2, 1]
    assert log.actions[:, CLICK].tolist() == [1, 1, 1]
    assert log.actions[:, LIKE].tolist() == [0, 1, 1]
    assert log.actions[:, SHARE].tolist() == [0, 0, 1]
    assert log.actions[:, NOT_INTERESTED].tolist() == [1, 0, 0]
    assert log.malformed.count == 0


def test_without_timestamp_file_order_is_time_order_and_action_columns_are_read(tmp_path):
    path = tmp_path / "log.tsv"
    path.write_text("user\titem\tshare\n7\t30\t1\n7\t10\t0\n3\t20\t0\n")
    log = load(path)
    assert log.user_ids.tolist() == [3, 7]  # integer ids sort numerically
    assert log.item.tolist() == [3, 1, 2] and log.item_ids.tolist() == [10, 20, 30]
    assert log.actions[:, SHARE].tolist() == [1, 0, 0] and log.actions[:, CLICK].all()
    assert log.author.tolist() == [0, 0, 0]


def test_parquet_sasrec_text_and_movielens_folder(tmp_path):
    pq.write_table(pa.table({"user_id": [1, 1, 2], "item_id": [5, 6, 5], "timestamp": [2, 1, 3]}),
                   tmp_path / "log.parquet")
    log = load(tmp_path / "log.parquet")
    assert log.item_ids[log.item - 1].tolist() == [6, 5, 5]
    (tmp_path / "seq.txt").write_text("1 4\n1 2\n2 4\n")
    log = load(tmp_path / "seq.txt")
    assert (log.user_ids[log.user - 1].tolist(), log.item_ids[log.item - 1].tolist()) == ([1, 1, 2], [4, 2, 4])
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "u.data").write_text("1\t50\t5\t881250949\n1\t20\t2\t881250900\n2\t50\t3\t881250000\n")
    log = load(folder)
    assert log.item_ids[log.item - 1].tolist() == [50, 20, 50]
    assert log.actions[:, LIKE].tolist() == [0, 0, 1] and log.actions[:, NOT_INTERESTED].tolist() == [0, 1, 0]


def test_malformed_rows_are_counted_with_line_numbers_not_silently_dropped(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,rating\n1,2,5\n1,3\n,4,3\n2,5,abc\n2,6,4\n3,7,nan\n")
    log = load(path)
    assert len(log) == 2
    assert log.malformed.count == 4
    lines = [line for line, _ in log.malformed.examples]
    assert lines == [3, 4, 5, 7]
    reasons = " ".join(reason for _, reason in log.malformed.examples)
    assert "expected 3 fields" in reasons and "empty user_id" in reasons and "'abc'" in reasons
    assert "4 malformed rows" in log.malformed.summary()


def test_bad_action_value_is_malformed(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,favorite\n1,2,1\n1,3,2\n")
    log = load(path)
    assert len(log) == 1 and log.malformed.examples == [(3, "action favorite must be 0 or 1, got '2'")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", "", "no interaction rows"),
        ("header.csv", "user_id,item_id\n", "no interaction rows"),
        ("nouser.csv", "item_id,rating\n1,2\n", "no user column"),
        ("allbad.csv", "user_id,item_id\n1\n2\n", "no readable interaction rows"),
        ("bad.parquet", "not parquet", "cannot read as Parquet"),
        ("log.unknown", "1 2\n", "cannot tell the format"),
    ],
)
def test_unusable_files_fail_with_their_name(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(LogDataError, match=message) as err:
        load(path)
    assert str(path) in str(err.value)


def test_missing_file_and_folder_without_u_data(tmp_path):
    with pytest.raises(LogDataError, match="no such file"):
        load(tmp_path / "absent.csv")
    with pytest.raises(LogDataError, match="no u.data"):
        load(tmp_path)


def test_explicit_format_overrides_the_suffix(tmp_path):
    path = tmp_path / "log.data"
    path.write_text("u1 i1\nu1 i2\n")
    log = load(path, "sasrec")
    assert len(log) == 2 and np.array_equal(log.item, [1, 2])


def test_a_byte_order_mark_huge_ids_and_float_ids(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_text("\ufeffuser_id,item_id\n" + "".join(f"{10**30 + u},{i}\n" for u in range(3) for i in range(4)),
                    encoding="utf-8")
    log = load_interactions(path, LogsConfig(), DEFAULT_ACTIONS)
    assert log.num_users == 3 and log.num_items == 4  # the header read, ids beyond int64 kept as text
    pq.write_table(pa.table({"user_id": [1.0, 2.5], "item_id": [1, 2]}), tmp_path / "float.parquet")
    with pytest.raises(LogDataError, match="float.parquet: column 'user_id' holds ids, which must be integers"):
        load_interactions(tmp_path / "float.parquet", LogsConfig(), DEFAULT_ACTIONS)

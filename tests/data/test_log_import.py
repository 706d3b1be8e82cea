import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from phoenix.cli import main
from phoenix.config import ConfigError, import_config
from phoenix.data.dataset import SPLITS, read_impressions, read_metadata
from phoenix.data.ids import encode_id, encode_ids
from phoenix.data.log_import import import_log
from phoenix.data.log_sources import LogFileError
from phoenix.data.packing import pack_examples

HEADER = "user_id,post_id,time,like,reply\n"


def write(path, text):
    path.write_text(text)
    return path


def string_log(n_users=6, per_user=10):
    """Users u0..u5, each shown ten posts a day apart, liking every other one (in time order)."""
    lines = []
    for u in range(n_users):
        for i in range(per_user):
            day = 1 + i
            lines.append(f"u{u},post-{(u + i) % 7},2024-01-{day:02d}T{u:02d}:00:00Z,{(i + u) % 2},{int(i == 3)}")
    return HEADER + "\n".join(lines) + "\n"


def test_string_ids_iso_times_and_default_columns(tmp_path):
    meta = import_log(write(tmp_path / "log.csv", string_log()), tmp_path / "ds", import_config())
    assert meta["actions"] == ["like", "reply"] and meta["surfaces"] == ["unknown"]
    assert meta["counts"] == {"train": 48, "valid": 6, "test": 6} and meta["users"] == 6 and meta["posts"] == 7
    log = read_impressions(tmp_path / "ds")
    assert set(log.user_id.tolist()) == {encode_id(f"u{u}", "u") for u in range(6)}
    assert (np.diff(log.time_s) >= 0).all() and (np.diff(log.split) >= 0).all()  # ordered and split by time
    assert log.request_id is None and meta["authors"] == "each post its own"
    np.testing.assert_array_equal(log.author_id, log.post_id)  # no author column: no author is invented
    first = log.user_id == encode_id("u0", "u")
    assert log.time_s[first][0] == 1704067200  # 2024-01-01T00:00:00Z
    assert meta["positives"]["test"]["reply"] == 0  # an action with no positives in a split is reported


def test_rerunning_an_import_writes_the_same_directory(tmp_path):
    log = write(tmp_path / "log.csv", string_log())
    import_log(log, tmp_path / "a", import_config())
    import_log(log, tmp_path / "b", import_config())
    for split in SPLITS:
        a = pq.read_table(tmp_path / "a" / "impressions" / f"{split}.parquet")
        assert a.equals(pq.read_table(tmp_path / "b" / "impressions" / f"{split}.parquet"))
    assert (tmp_path / "a" / "dataset.json").read_text() == (tmp_path / "b" / "dataset.json").read_text()
    assert not list((tmp_path / "a").rglob("*.tmp"))


def test_unsorted_rows_are_ordered_by_time_and_ties_keep_file_order(tmp_path):
    text = HEADER + "a,3,30,1,0\na,1,10,1,0\na,2,10,0,0\nb,4,20,1,0\nb,5,40,0,1\nc,6,50,1,0\nc,7,60,1,0\n"
    import_log(write(tmp_path / "log.csv", text), tmp_path / "ds", import_config(valid_start="40", test_start="50"))
    log = read_impressions(tmp_path / "ds")
    np.testing.assert_array_equal(log.post_id, [1, 2, 4, 3, 5, 6, 7])
    np.testing.assert_array_equal(log.split, [0, 0, 0, 0, 1, 2, 2])
    np.testing.assert_array_equal(log.impression_id, np.arange(1, 8))


def test_a_user_seen_only_in_test_is_packed_with_an_empty_history(tmp_path):
    text = HEADER + "a,1,10,1,0\na,2,20,1,0\nb,3,30,1,0\na,4,40,0,1\nz,5,50,1,0\nz,6,60,0,0\n"
    import_log(write(tmp_path / "log.csv", text), tmp_path / "ds", import_config(valid_start="40", test_start="50"))
    test = pack_examples(read_impressions(tmp_path / "ds"), "test", 4, 4)
    assert len(test) == 1 and test.request.user_id[0] == encode_id("z", "u")
    np.testing.assert_array_equal(test.request.history_post_id[0], [5, 0, 0, 0])  # only z's own engagement
    np.testing.assert_array_equal(test.request.candidate_post_id[0, :2], [5, 6])
    np.testing.assert_array_equal(test.request.candidate_cutoff[0, :2], [0, 1])  # the first sees nothing


def test_malformed_rows_name_file_line_and_column_and_are_never_dropped_silently(tmp_path):
    bad = HEADER + "a,1,10,1,0\n,2,20,0,0\nb,3,yesterday,1,0\nc,4,30,2,0\nd,5\ne,6,40,1,0\nf,7,50,1,0\ng,8,60,1,0\n"
    path = write(tmp_path / "bad.csv", bad)
    with pytest.raises(LogFileError) as err:
        import_log(path, tmp_path / "ds", import_config(valid_start="40", test_start="50"))
    message = str(err.value)
    for expected in ("bad.csv:3: user_id: missing id", "bad.csv:4: time: not a time",
                     "bad.csv:5: like: a label that is not 0/1", "1 row(s) with 2 fields where the header has 5"):
        assert expected in message
    assert not (tmp_path / "ds" / "dataset.json").exists()
    meta = import_log(path, tmp_path / "ds", import_config(valid_start="40", test_start="50", skip_malformed=True))
    assert sum(meta["counts"].values()) == 4 and meta["malformed"]["rows"] == meta["malformed"]["dropped"] == 4
    assert meta["malformed"]["counts"]["like: a label that is not 0/1"] == 1


def test_duplicate_impression_ids_are_reported_and_only_skipped_on_request(tmp_path):
    text = "impression_id,user_id,post_id,time,like\n" + "".join(
        f"{i},u,{i},{10 * i},1\n" for i in (1, 2, 3, 2, 4, 5, 6, 7, 8, 9))
    path = write(tmp_path / "dup.csv", text)
    with pytest.raises(LogFileError, match=r"dup.csv:5: a duplicate impression_id"):
        import_log(path, tmp_path / "ds", import_config())
    meta = import_log(path, tmp_path / "ds", import_config(skip_malformed=True))
    assert sum(meta["counts"].values()) == 9 and meta["malformed"]["dropped"] == 1


def test_file_errors_name_the_file_and_column(tmp_path):
    with pytest.raises(LogFileError, match="missing.csv: log file not found"):
        import_log(tmp_path / "missing.csv", tmp_path / "ds", import_config())
    with pytest.raises(LogFileError, match="empty.csv: empty file"):
        import_log(write(tmp_path / "empty.csv", ""), tmp_path / "ds", import_config())
    with pytest.raises(LogFileError, match="nothing.csv: the log has no rows"):
        import_log(write(tmp_path / "nothing.csv", HEADER), tmp_path / "ds", import_config())
    with pytest.raises(LogFileError, match=r"log.csv: column 'uid' \(import.user_id\) not found"):
        import_log(write(tmp_path / "log.csv", string_log()), tmp_path / "ds", import_config(user_id="uid"))
    with pytest.raises(LogFileError, match="ids.csv: no action columns"):
        import_log(write(tmp_path / "ids.csv", "user_id,post_id,time\n1,2,3\n"), tmp_path / "ds", import_config())
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(LogFileError, match="broken.parquet: not a readable Parquet file"):
        import_log(tmp_path / "broken.parquet", tmp_path / "ds", import_config())
    pq.write_table(pa.table({"user_id": [1.5], "post_id": [1], "like": [1]}), tmp_path / "float.parquet")
    with pytest.raises(LogFileError, match="float.parquet: column 'user_id': ids must be integers or strings"):
        import_log(tmp_path / "float.parquet", tmp_path / "ds", import_config())
    with pytest.raises(ConfigError, match="import.time_unit"):
        import_config(time_unit="days")


def test_parquet_directories_millisecond_times_and_named_columns(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    for part in range(2):
        rows = slice(part * n // 2, (part + 1) * n // 2)
        table = pa.table({
            "viewer": rng.integers(1, 30, n)[rows], "item": rng.integers(1, 50, n)[rows],
            "ts": (1_700_000_000_000 + np.arange(n) * 1500)[rows], "fav": rng.integers(0, 2, n)[rows],
            "tab": np.array(["home", "search"])[rng.integers(0, 2, n)][rows], "extra": np.zeros(n, np.int8)[rows],
        })
        pq.write_table(table, tmp_path / f"part-{part}.parquet")
    config = import_config(user_id="viewer", post_id="item", time="ts", surface="tab", actions=("fav",))
    meta = import_log(tmp_path, tmp_path / "ds", config)
    assert meta["actions"] == ["fav"] and meta["surfaces"] == ["home", "search"] and len(meta["files"]) == 2
    log = read_impressions(tmp_path / "ds")
    assert log.time_s[0] == 1_700_000_000 and log.time_s[-1] == 1_700_000_000 + (n - 1) * 3 // 2  # ms detected
    assert sum(meta["counts"].values()) == n


def test_the_cli_imports_with_flags_and_fails_in_one_line(tmp_path, capsys):
    path = write(tmp_path / "log.tsv", string_log().replace(",", "\t"))
    assert main(["import", str(path), "--out", str(tmp_path / "ds"), "--actions", "like"]) == 0
    assert json.loads(capsys.readouterr().out)["actions"] == ["like"]
    assert read_metadata(tmp_path / "ds")["actions"] == ["like"]
    assert main(["import", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "ds2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope.csv: log file not found" in err


def test_string_ids_hash_the_same_in_another_process():
    ids = ["alice", "bob", "", "ünïcode-id", "x" * 40, "42", "042", "-7"]
    here = encode_ids(pa.array(ids), "ids").tolist()
    code = ("import json,sys,pyarrow as pa; from phoenix.data.ids import encode_ids; "
            "print(json.dumps(encode_ids(pa.array(json.loads(sys.argv[1])), 'ids').tolist()))")
    there = json.loads(subprocess.run([sys.executable, "-c", code, json.dumps(ids)], capture_output=True,
                                      text=True, check=True, env={"PYTHONHASHSEED": "123"}).stdout)
    assert here == there
    assert here[5] == 42 and here[6] != 42 and len(set(here)) == len(ids)  # "42" is 42; "042" is text
    assert all(0 < v < 2**63 for v in here)
    assert encode_ids(np.array([0, 5]), "ids")[0] == encode_id("0", "ids")  # 0 is padding: it goes by its text
    big = encode_id(10**30, "ids")  # beyond 64 bits: by its text, never an overflow
    assert big == encode_id(str(10**30), "ids") and 0 < big < 2**63
    assert 0 < encode_id(2**64 - 5, "ids") < 2**63 and encode_id(2**64 - 5, "ids") != encode_id(-5, "ids")


def test_a_world_exported_as_plain_csv_imports_to_the_same_impressions(micro_world, tmp_path):
    world = read_impressions(micro_world)
    split_times = read_metadata(micro_world)["split_times_s"]
    columns = {"user_id": world.user_id, "post_id": world.post_id, "author_id": world.author_id,
               "surface": world.surface, "time": world.time_s}
    columns |= {a: world.labels[:, i] for i, a in enumerate(world.actions)}
    pacsv.write_csv(pa.table(columns), tmp_path / "log.csv")
    import_log(tmp_path / "log.csv", tmp_path / "ds",
               import_config(valid_start=str(split_times[0]), test_start=str(split_times[1])))
    imported = read_impressions(tmp_path / "ds")
    for name in ("impression_id", "user_id", "post_id", "author_id", "surface", "time_s", "labels", "split"):
        np.testing.assert_array_equal(getattr(imported, name), getattr(world, name), err_msg=name)
    assert imported.actions == world.actions


def test_a_mapping_file_names_the_columns_and_flags_override_it(tmp_path, capsys):
    text = "viewer,item,ts,fav,skip\n" + "".join(f"v{i % 4},{i},{100 + i},{i % 2},{int(i % 5 == 0)}\n"
                                              for i in range(40))
    path = write(tmp_path / "log.csv", text)
    write(tmp_path / "map.toml", '[import]\nuser_id = "viewer"\npost_id = "item"\ntime = "ts"\nactions = ["fav"]\n')
    args = ["import", str(path), "--out", str(tmp_path / "ds"), "--mapping", str(tmp_path / "map.toml")]
    assert main(args + ["--test-fraction", "0.25"]) == 0
    meta = read_metadata(tmp_path / "ds")
    assert meta["actions"] == ["fav"] and meta["counts"] == {"train": 26, "valid": 4, "test": 10}
    write(tmp_path / "bad.toml", '[import]\nuser = "viewer"\n')
    assert main(["import", str(path), "--out", str(tmp_path / "ds2"), "--mapping", str(tmp_path / "bad.toml")]) == 2
    assert "bad.toml: import.user: unknown key" in capsys.readouterr().err


def test_lines_after_a_line_with_the_wrong_field_count_keep_their_own_line_numbers(tmp_path):
    text = HEADER + "a,1,10,1,0\na,2,extra,20,1,0\nb,3,30,1,0\nb,4,40,7,0\n"
    with pytest.raises(LogFileError) as err:
        import_log(write(tmp_path / "log.csv", text), tmp_path / "ds", import_config())
    assert f"{tmp_path / 'log.csv'}:3: 6 fields where the header has 5" in str(err.value)
    assert f"{tmp_path / 'log.csv'}:5: like: a label that is not 0/1" in str(err.value)  # not :4


def test_a_log_whose_every_line_is_malformed_fails_naming_the_file(tmp_path):
    path = write(tmp_path / "log.csv", HEADER + "a,1\nb,2,3\n")
    with pytest.raises(LogFileError, match=r"log.csv: the log has no rows that can be read \(2 row"):
        import_log(path, tmp_path / "ds", import_config(skip_malformed=True))


def test_a_byte_order_mark_before_the_header_is_not_part_of_the_first_column_name(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(b"\xef\xbb\xbf" + string_log().encode())
    meta = import_log(path, tmp_path / "ds", import_config())
    assert meta["roles"]["user_id"] == "user_id" and meta["counts"]["train"] == 48

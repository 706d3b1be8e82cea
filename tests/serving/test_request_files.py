"""Request files: decoding into model batches, and errors that name the file, column and row."""

import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import SMALL_MODEL

from phoenix.data.ids import encode_id
from phoenix.serving.request_files import (
    REQUEST_SCHEMA,
    RequestFileError,
    decode_requests,
    open_request_file,
    requests_table,
)

ACTIONS = SMALL_MODEL.actions


def request(user, history, candidates, actions=None):
    return {
        "user_id": user,
        "history_post_id": [p for p, _ in history],
        "history_author_id": [a for _, a in history],
        "history_actions": actions if actions is not None else [[ACTIONS[0]] for _ in history],
        "candidate_post_id": [p for p, _ in candidates],
        "candidate_author_id": [a for _, a in candidates],
    }


def test_decode_pads_history_and_candidates_and_keeps_the_most_recent_history():
    h = SMALL_MODEL.history_len
    long_history = [(100 + i, 7) for i in range(h + 3)]
    actions = [[ACTIONS[i % 3]] for i in range(h + 3)]
    table = requests_table([request(5, long_history, [(1, 2)], actions), request(6, [], [(3, 4), (5, 6), (7, 8)])])
    decoded = decode_requests(table, SMALL_MODEL, "t")
    r = decoded.request
    assert decoded.truncated_histories == 1
    np.testing.assert_array_equal(decoded.candidate_count, [1, 3])
    np.testing.assert_array_equal(r.history_post_id[0], [100 + i for i in range(3, h + 3)])  # oldest 3 cut
    np.testing.assert_array_equal(r.history_post_id[1], np.zeros(h))
    np.testing.assert_array_equal(np.argmax(r.history_actions[0], axis=-1), [i % 3 for i in range(3, h + 3)])
    assert r.history_actions[0].sum() == h and r.history_actions[1].sum() == 0
    np.testing.assert_array_equal(r.candidate_post_id, [[1, 0, 0], [3, 5, 7]])
    np.testing.assert_array_equal(r.candidate_author_id, [[2, 0, 0], [4, 6, 8]])
    np.testing.assert_array_equal(r.candidate_cutoff, [[h] * 3, [0] * 3])


def test_multi_hot_actions_of_one_item():
    table = requests_table([request(1, [(9, 9)], [(1, 1)], [[ACTIONS[2], ACTIONS[0]]])])
    row = decode_requests(table, SMALL_MODEL, "t").request.history_actions[0, 0]
    assert row[0] == row[2] == 1 and row.sum() == 2


@pytest.mark.parametrize(
    "change, column, message",
    [
        (lambda r: r.update(history_author_id=[9]), "history_author_id", "1 items where history_post_id has 2"),
        (lambda r: r.update(candidate_post_id=[], candidate_author_id=[]), "candidate_post_id", "no candidates"),
        (lambda r: r.update(history_actions=[["teleport"], []]), "history_actions", "unknown action 'teleport'"),
        (lambda r: r.update(history_actions=[[]]), "history_actions", "1 items where history_post_id has 2"),
        (lambda r: r.update(history_actions=[None, []]), "history_actions", "null instead of a list of action"),
        (lambda r: r.update(history_actions=None), "history_actions", "null instead of a list"),
        (lambda r: r.update(history_post_id=[9, None]), "history_post_id", "null id"),
        (lambda r: r.update(candidate_author_id=None), "candidate_author_id", "null instead of a list"),
        (lambda r: r.update(user_id=None), "user_id", "null id"),
        (lambda r: r.update(candidate_surface=[99]), "candidate_surface", "surface 99 outside [0, "),
        (lambda r: r.update(history_surface=[0, -1]), "history_surface", "surface -1 outside [0, "),
        (lambda r: r.update(history_surface=[0, None]), "history_surface", "null surface"),
    ],
)
def test_content_errors_name_the_file_row_and_column(change, column, message):
    rows = [request(u, [(9, 9), (8, 8)], [(1, 1)]) for u in (1, 2, 3)]
    change(rows[2])
    expected = f"f.parquet (row group 4), row 102, column '{column}': {message}"
    with pytest.raises(RequestFileError, match="^" + re.escape(expected)):
        decode_requests(requests_table(rows), SMALL_MODEL, "f.parquet (row group 4)", first_row=100)


def test_an_empty_string_id_is_an_error_naming_its_row():
    schema = pa.schema([pa.field("user_id", pa.string()) if f.name == "user_id" else f for f in REQUEST_SCHEMA])
    rows = [dict(request(u, [(9, 9)], [(1, 1)]), user_id=u, history_surface=[0], candidate_surface=[0])
            for u in ("a", "b", "")]
    with pytest.raises(RequestFileError, match=r"^f, row 2, column 'user_id': empty id"):
        decode_requests(pa.Table.from_pylist(rows, schema=schema), SMALL_MODEL, "f")


def test_schema_errors_name_the_file_and_column(tmp_path):
    good = requests_table([request(1, [(9, 9)], [(1, 1)])])
    missing = tmp_path / "missing.parquet"
    pq.write_table(good.drop(["candidate_author_id"]), missing)
    with pytest.raises(RequestFileError, match=r"missing.parquet: column 'candidate_author_id' is missing"):
        open_request_file(missing)
    wrong = tmp_path / "wrong.parquet"
    pq.write_table(good.set_column(0, "user_id", pa.array([1.5])), wrong)
    with pytest.raises(RequestFileError, match=r"wrong.parquet: column 'user_id' must be an integer or string id"):
        open_request_file(wrong)
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(RequestFileError, match=r"corrupt.parquet: not a readable Parquet file"):
        open_request_file(corrupt)


def test_string_ids_decode_to_the_ids_an_import_gives_them():
    row = request(1, [(9, 9), (8, 8)], [(1, 1), (2, 2)])
    text = dict(row, user_id="u-1", history_post_id=["p-9", "8"], candidate_post_id=["p-1", "2"],
                history_surface=[0, 0], candidate_surface=[0, 0])
    schema = pa.schema([f if f.name not in ("user_id", "history_post_id", "candidate_post_id")
                        else pa.field(f.name, pa.string() if f.name == "user_id" else pa.list_(pa.string()))
                        for f in REQUEST_SCHEMA])
    got = decode_requests(pa.Table.from_pylist([text], schema=schema), SMALL_MODEL, "file").request
    assert got.user_id[0] == encode_id("u-1", "u")
    np.testing.assert_array_equal(got.history_post_id[0, :2], [encode_id("p-9", "p"), 8])  # "8" is the id 8
    np.testing.assert_array_equal(got.candidate_post_id[0], [encode_id("p-1", "p"), 2])

"""Fuzzing request files (`phoenix score`'s input): rows built from mostly valid values with random
faults. Whatever arrives, decoding gives the batch a plain reference decoder gives, or a
RequestFileError naming a file row and column that really are bad; never another exception, never a
silent coercion, and whatever decodes passes the model's own checks."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
from helpers import SMALL_MODEL
from hypothesis import given, settings
from hypothesis import strategies as st

from phoenix.data.batch import validate_request
from phoenix.data.ids import encode_id
from phoenix.serving.request_files import REQUEST_SCHEMA, RequestFileError, decode_requests

ACTIONS = SMALL_MODEL.actions
S = SMALL_MODEL.num_surfaces
ID = st.integers(1, 10**6) | st.integers(-(2**63), 2**63 - 1)
ACTION_NAMES = st.lists(st.sampled_from(ACTIONS) | st.sampled_from(["", "teleport"]) | st.none(), max_size=3)
SURFACE = st.integers(0, S - 1) | st.integers(-(2**31), 2**31 - 1) | st.none()


@st.composite
def rows(draw):
    """A request row; each list column has the right length, then maybe a fault of one kind."""
    h, c = draw(st.integers(0, SMALL_MODEL.history_len + 3)), draw(st.integers(1, 4))
    row = {
        "user_id": draw(ID),
        "history_post_id": draw(st.lists(ID, min_size=h, max_size=h)),
        "history_author_id": draw(st.lists(ID, min_size=h, max_size=h)),
        "history_actions": draw(st.lists(st.lists(st.sampled_from(ACTIONS), max_size=2), min_size=h, max_size=h)),
        "history_surface": draw(st.lists(st.integers(0, S - 1), min_size=h, max_size=h)),
        "candidate_post_id": draw(st.lists(ID, min_size=c, max_size=c)),
        "candidate_author_id": draw(st.lists(ID, min_size=c, max_size=c)),
        "candidate_surface": draw(st.lists(st.integers(0, S - 1), min_size=c, max_size=c)),
    }
    fault = draw(st.sampled_from(["none", "none", "none", "length", "null list", "null item", "action", "surface",
                                  "null user", "no candidates"]))
    name = draw(st.sampled_from(list(row)[1:]))
    if fault == "null user":
        row["user_id"] = None
    elif fault == "no candidates":
        row["candidate_post_id"] = row["candidate_author_id"] = row["candidate_surface"] = []
    elif fault == "length":
        row[name] = row[name] + row[name][:1] if draw(st.booleans()) else row[name][1:]
    elif fault == "null list":
        row[name] = None
    elif fault == "null item" and row[name]:
        row[name][draw(st.integers(0, len(row[name]) - 1))] = None
    elif fault == "action" and row["history_actions"]:
        row["history_actions"][0] = draw(ACTION_NAMES)
    elif fault == "surface":
        row[draw(st.sampled_from(["candidate_surface", "history_surface"]))][:1] = [draw(SURFACE)]
    return row


def bad_columns(row: dict) -> set[str]:
    """The reference rules, one row at a time in plain Python."""
    bad = set() if row["user_id"] is not None else {"user_id"}
    for name, value in row.items():
        if name == "user_id":
            continue
        if value is None or any(v is None for v in value):
            bad.add(name)
        elif name.endswith("surface") and not all(0 <= v < S for v in value):
            bad.add(name)
        elif name == "history_actions" and not all(a in ACTIONS for names in value if names for a in names):
            bad.add(name)
    for prefix, lead in (("history_", "history_post_id"), ("candidate_", "candidate_post_id")):
        if row[lead] is None:
            continue
        for name in row:
            if name.startswith(prefix) and row[name] is not None and len(row[name]) != len(row[lead]):
                bad.add(name)
    if row["candidate_post_id"] == []:
        bad.add("candidate_post_id")
    return bad


@settings(max_examples=300, deadline=None)
@given(st.lists(rows(), min_size=1, max_size=3), st.integers(0, 10**6))
def test_request_files_decode_exactly_or_name_a_bad_row_and_column(batch, first_row):
    table = pa.Table.from_pylist(batch, schema=REQUEST_SCHEMA)
    try:
        decoded = decode_requests(table, SMALL_MODEL, "f.parquet", first_row)
    except RequestFileError as err:
        named = re.match(r"f\.parquet, row (\d+), column '(\w+)': ", str(err))
        assert named, err
        row, column = int(named[1]) - first_row, named[2]
        assert 0 <= row < len(batch) and column in bad_columns(batch[row]), (err, batch[row])
        return
    assert not any(bad_columns(r) for r in batch), batch
    validate_request(decoded.request, SMALL_MODEL)  # nothing that decodes fails later in the model
    h_max = SMALL_MODEL.history_len
    for i, r in enumerate(batch):
        kept = r["history_post_id"][-h_max:] if r["history_post_id"] else []
        assert decoded.request.user_id[i] == encode_id(r["user_id"], "u")
        np.testing.assert_array_equal(decoded.request.history_post_id[i, : len(kept)],
                                      [encode_id(p, "p") for p in kept])
        np.testing.assert_array_equal(decoded.request.history_surface[i, : len(kept)], r["history_surface"][-h_max:])
        assert decoded.request.history_actions[i].sum() == sum(len(set(a)) for a in r["history_actions"][-h_max:])
        np.testing.assert_array_equal(decoded.request.candidate_post_id[i, : decoded.candidate_count[i]],
                                      [encode_id(p, "p") for p in r["candidate_post_id"]])
        np.testing.assert_array_equal(decoded.request.candidate_surface[i, : decoded.candidate_count[i]],
                                      r["candidate_surface"])

"""Fuzzing the request dicts `rank()` and `phoenix rank` read: whatever arrives, the answer is a
well-typed Query/Candidate or a ValueError naming the field; never another exception, never a
silent coercion (a surface is an int, `in_network` a bool or None, every id a positive int64)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from candidate_pipeline.types import candidate_from_dict, query_from_dict

SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
CANDIDATE_KEYS = ("post_id", "author_id", "created_s", "surface", "in_network", "text", "reply_to_post_id", "source")
QUERY_KEYS = ("user_id", "request_time_s", "history", "following", "blocked", "options", "muted_keywords")


def is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


GOOD_ID = st.integers(min_value=1, max_value=10**9) | st.text(min_size=1, max_size=8).filter(str.strip)
CANDIDATES = st.fixed_dictionaries(  # mostly valid ids, so the other fields get looked at too
    {"post_id": GOOD_ID | VALUES, "author_id": GOOD_ID | VALUES},
    optional={key: VALUES for key in CANDIDATE_KEYS[2:]} | {"unknown_key": VALUES},
)


@settings(max_examples=400, deadline=None)
@given(CANDIDATES)
def test_candidate_dicts_parse_or_name_the_field(data):
    try:
        c = candidate_from_dict(data, "candidates[0]")
    except ValueError as err:
        assert str(err).startswith("candidates[0]"), err
        return
    assert is_id(c.post_id) and (c.author_id is None or is_id(c.author_id))
    assert isinstance(c.surface, int) and not isinstance(c.surface, bool) and c.surface >= 0
    assert c.in_network is None or isinstance(c.in_network, bool)
    assert c.created_s is None or (isinstance(c.created_s, int) and not isinstance(c.created_s, bool))


QUERIES = st.fixed_dictionaries(
    {"user_id": GOOD_ID | VALUES, "request_time_s": st.integers(0, 2**40) | VALUES},
    optional={key: VALUES for key in QUERY_KEYS[2:]},
)


@settings(max_examples=400, deadline=None)
@given(QUERIES,
       st.lists(st.dictionaries(st.sampled_from(("post_id", "author_id", "actions", "surface")), VALUES), max_size=2))
def test_query_dicts_parse_or_name_the_field(data, history):
    if history:
        data = {**data, "history": history}
    try:
        q = query_from_dict(data)
    except ValueError as err:
        assert str(err).startswith("user."), err
        return
    assert is_id(q.user_id) and isinstance(q.request_time_s, int) and not isinstance(q.request_time_s, bool)
    assert all(is_id(i) for i in q.following | q.blocked)
    for item in q.history:
        assert is_id(item.post_id) and is_id(item.author_id) and all(isinstance(a, str) for a in item.actions)
        assert isinstance(item.surface, int) and not isinstance(item.surface, bool)
    assert not any(isinstance(v, float) and math.isnan(v) for v in (q.user_id, q.request_time_s))

import dataclasses

import numpy as np
import pytest
from helpers import SMALL_MODEL, random_request

from phoenix.data.batch import featurize


@pytest.fixture
def request_batch():
    return random_request(np.random.default_rng(0), lengths=[5, 12])


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda r: dict(candidate_author_id=r.candidate_author_id[:, :3]), "candidate_author_id"),
        (lambda r: dict(history_actions=r.history_actions[..., :4]), "history_actions"),
        (lambda r: dict(history_actions=np.full(r.history_actions.shape, np.nan)), "history_actions"),
        (lambda r: dict(candidate_surface=r.candidate_surface + 16), "candidate_surface"),
        (lambda r: dict(candidate_cutoff=r.candidate_cutoff + 13), "candidate_cutoff"),
        (lambda r: dict(candidate_post_id=-r.candidate_post_id), "candidate_post_id"),
        (lambda r: dict(user_id=r.user_id.astype(float)), "user_id"),
    ],
)
def test_bad_requests_name_the_field(request_batch, change, field):
    bad = dataclasses.replace(request_batch, **change(request_batch))
    with pytest.raises(ValueError, match=field):
        featurize(bad, SMALL_MODEL)


def test_overlong_history_and_holes_in_history_are_rejected(request_batch):
    config = dataclasses.replace(SMALL_MODEL, history_len=8)
    with pytest.raises(ValueError, match="history_post_id.*exceeds model.history_len=8"):
        featurize(request_batch, config)
    holes = dataclasses.replace(request_batch, history_post_id=request_batch.history_post_id.copy())
    holes.history_post_id[1, 2] = 0  # padding before real items
    with pytest.raises(ValueError, match="padding"):
        featurize(holes, SMALL_MODEL)


def test_cutoff_beyond_a_rows_history_is_rejected(request_batch):
    bad = dataclasses.replace(request_batch, candidate_cutoff=request_batch.candidate_cutoff.copy())
    bad.candidate_cutoff[0, 0] = 6  # row 0 has 5 history items
    with pytest.raises(ValueError, match="request 0 has history length 5"):
        featurize(bad, SMALL_MODEL)

import numpy as np
import pytest

from candidate_pipeline.out_of_network import OutOfNetworkSource
from candidate_pipeline.types import HistoryItem, Query
from phoenix import Ranker
from phoenix.retrieval.retriever import Retriever

NOW = 14 * 86400


@pytest.fixture(scope="module")
def retriever(retrieval_workdir):
    return Retriever.load(retrieval_workdir)


def query(retriever, **extra):
    index = retriever.index
    history = [HistoryItem(int(p), int(a), ("favorite",)) for p, a in zip(index.post_ids[:5], index.author_ids[:5])]
    return Query(user_id=3, request_time_s=NOW, history=history, **extra)


def test_source_excludes_followed_blocked_seen_and_old_posts(retriever):
    index = retriever.index
    fresh = (index.created_s > NOW - 48 * 3600) & (index.created_s <= NOW)
    authors = [int(a) for a in np.unique(index.author_ids[fresh])[:6]]
    seen = frozenset(int(p) for p in index.post_ids[fresh][:20])
    q = query(retriever, following=frozenset(authors[:3]), blocked=frozenset(authors[3:4]),
              muted=frozenset(authors[4:5]), seen_post_ids=seen)
    found = OutOfNetworkSource(retriever, max_results=100).fetch(q)
    assert len(found) == 100
    assert all(c.source == "out_of_network" and c.in_network is False for c in found)
    assert not {c.author_id for c in found} & set(authors[:5])
    assert not {c.post_id for c in found} & seen
    assert all(NOW - 48 * 3600 < c.created_s <= NOW for c in found)


def test_source_results_follow_the_index_ranking(retriever):
    q = query(retriever)
    found = OutOfNetworkSource(retriever, max_results=30).fetch(q)
    ids, _ = retriever.search(retriever.request(3, q.history), 30, created_after=NOW - 48 * 3600,
                              created_at_or_before=NOW)
    assert [c.post_id for c in found] == ids[0].tolist()


def test_rank_uses_the_retrieval_source(retrieval_workdir, retriever):
    ranker = Ranker.load(retrieval_workdir)
    assert "out_of_network" in [s.name for s in ranker.pipeline.sources]
    feed = ranker.rank({"user_id": 3, "request_time_s": NOW, "history": []})  # no candidates passed in
    assert feed.items and all(item.source == "out_of_network" for item in feed.items)
    assert not Ranker.load(retrieval_workdir, retrieval=False).rank(
        {"user_id": 3, "request_time_s": NOW, "history": []}).items


def test_unknown_user_and_bad_k_fail_clearly(retriever):
    with pytest.raises(ValueError, match="user_id: expected a positive integer id"):
        retriever.retrieve(0, [], 10)
    with pytest.raises(ValueError, match="k: 5000 is larger than the corpus"):
        retriever.retrieve(3, [], 5000)
    with pytest.raises(ValueError, match=r"history\[0\].actions: unknown action 'favourite'"):
        retriever.retrieve(3, [HistoryItem(1, 1, ("favourite",))], 10)

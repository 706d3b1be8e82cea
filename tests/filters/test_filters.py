from candidate_pipeline.types import HOUR_S, Candidate, Query
from filters.muted_keywords import MutedKeywordFilter
from filters.post_selection import ConversationDedupFilter, DroppedRelativeFilter
from filters.pre_scoring import (
    AgeFilter,
    BlockedMutedAuthorFilter,
    CoreDataFilter,
    DuplicateFilter,
    PreviouslySeenFilter,
    PreviouslyServedFilter,
    RepeatedRepostFilter,
    SelfPostFilter,
    UnfollowedReplyRepostFilter,
)

NOW = 1_000_000


def query(**kw) -> Query:
    return Query(user_id=1, request_time_s=NOW, **kw)


def post(post_id: int, author_id: int = 10, age_h: float = 1.0, **kw) -> Candidate:
    return Candidate(post_id, author_id, int(NOW - age_h * HOUR_S), **kw)


def run(f, q, candidates, dropped=frozenset()):
    kept, removed = f.apply(q, list(candidates), set(dropped))
    return [c.post_id for c in kept], {c.post_id: why for c, why in removed}


def test_duplicates_keep_the_first_source():
    kept, removed = run(DuplicateFilter(), query(), [post(1, source="in_network"), post(2), post(1, source="oon")])
    assert kept == [1, 2] and list(removed) == [1]


def test_core_data_and_age_edges():
    assert run(CoreDataFilter(), query(), [post(1), Candidate(2, None, NOW)])[0] == [1]
    candidates = [post(1, age_h=47.9), post(2, age_h=48.1), Candidate(3, 10, None), post(4, age_h=-1)]
    candidates.append(post(5, age_h=48))
    kept, removed = run(AgeFilter(48), query(), candidates)
    assert kept == [1, 5]  # exactly 48 h is still allowed
    assert "unknown" in removed[3] and "after the request" in removed[4] and "older than 48 h" in removed[2]


def test_self_posts_and_blocked_or_muted_authors():
    assert run(SelfPostFilter(), query(), [post(1, author_id=1), post(2)])[0] == [2]
    q = query(blocked=frozenset({20}), muted=frozenset({30}))
    kept, removed = run(BlockedMutedAuthorFilter(), q, [post(1, 20), post(2, 30), post(3, 40)])
    assert kept == [3] and "blocked" in removed[1] and "muted" in removed[2]


def test_replies_and_reposts_need_a_followed_author():
    q = query(following=frozenset({10}))
    candidates = [
        post(1, 10, reply_to_post_id=99),  # followed reply: kept
        post(2, 20, reply_to_post_id=99),  # unfollowed reply: dropped
        post(3, 20, repost_of_post_id=98),  # unfollowed repost: dropped
        post(4, 20),  # unfollowed original: kept (out-of-network)
    ]
    kept, removed = run(UnfollowedReplyRepostFilter(), q, candidates)
    assert kept == [1, 4] and set(removed) == {2, 3}


def test_repeated_reposts_show_a_post_once():
    candidates = [post(1, repost_of_post_id=50), post(2, repost_of_post_id=50), post(3, repost_of_post_id=60), post(60)]
    kept, removed = run(RepeatedRepostFilter(), query(), candidates)
    assert kept == [1, 60] and "another repost of post 50" in removed[2] and "already a candidate" in removed[3]


def test_seen_and_served():
    q = query(seen_post_ids=frozenset({1, 70}), served_post_ids=frozenset({2}))
    assert run(PreviouslySeenFilter(), q, [post(1), post(2), post(3, repost_of_post_id=70)])[0] == [2]
    assert run(PreviouslyServedFilter(), q, [post(1), post(2)])[0] == [1]


def test_muted_keywords_whole_words_phrases_any_case_and_quotes():
    q = query(muted_keywords=("spoiler", "Final  Score"))
    candidates = [
        post(1, text="Huge SPOILER ahead"),
        post(2, text="spoilers are fine: only whole words match"),
        post(3, text="the final\nscore was 3-1"),
        post(4, text="my take", quoted_text="no spoiler, promise"),
        post(5, text="final scoreboard"),
    ]
    kept, removed = run(MutedKeywordFilter(), q, candidates)
    assert kept == [2, 5]
    assert "in the post" in removed[1] and "quoted post" in removed[4]


def test_conversation_dedup_keeps_the_best_branch_and_relatives_follow_drops():
    ranked = [post(1, conversation_id=7), post(2), post(3, conversation_id=7), post(4, conversation_id=8)]
    kept, removed = run(ConversationDedupFilter(), query(), ranked)
    assert kept == [1, 2, 4] and list(removed) == [3]
    candidates = [post(5, quote_of_post_id=3), post(6, reply_to_post_id=40), post(7, repost_of_post_id=2)]
    kept, removed = run(DroppedRelativeFilter(), query(), candidates, dropped={3, 2})
    assert kept == [6] and "quoted post 3" in removed[5] and "reposted post 2" in removed[7]

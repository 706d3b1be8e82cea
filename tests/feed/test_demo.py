import numpy as np

from phoenix.feed.demo import render_feed, sample_feed


def test_demo_feed_mixes_sources_and_beats_random(retrieval_workdir):
    demo = sample_feed(retrieval_workdir, seed=1)
    by_source = demo.scored_by_source
    assert by_source.get("out_of_network", 0) > 0 and by_source.get("in_network", 0) > 0
    assert sum(by_source.values()) == demo.num_candidates == len(demo.true_score)
    assert {item.source for item in demo.feed.items} <= {"in_network", "out_of_network"}
    value = demo.value_at(10)
    assert value["model"] <= value["oracle"]
    # One user's top 10 is noisy: over several users the model's feed is worth more than a random one.
    values = [value] + [sample_feed(retrieval_workdir, seed=seed).value_at(10) for seed in range(2, 5)]
    assert np.mean([v["random"] for v in values]) < np.mean([v["model"] for v in values])
    text = render_feed(demo)
    assert "out_of_network" in text and f"user {demo.feed.user_id}:" in text

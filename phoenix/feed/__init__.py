"""The For You feed: the request pipeline wired to the ranker and the retriever (`Ranker`), and the demo."""

"""Phoenix: an open JAX/Flax For You ranker. `from phoenix import Ranker` for the request API."""


def __getattr__(name: str):
    # Lazy, so `import phoenix.config` stays light (no JAX import).
    if name == "Ranker":
        from phoenix.feed.ranker_api import Ranker

        return Ranker
    raise AttributeError(f"module 'phoenix' has no attribute {name!r}")

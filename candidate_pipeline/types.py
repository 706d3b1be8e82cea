"""What flows through the pipeline: the viewer's `Query` and each `Candidate`.

Both are plain dataclasses so callers can build them by hand; `from_dict`
accepts JSON-like dicts and fails with the field named when a value is
missing, of the wrong type, or NaN. Ids in dicts may be integers or strings:
they become model ids exactly as `phoenix import` encodes a log's
(`phoenix.data.ids`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from phoenix.data.ids import encode_id
from phoenix.serving.inputs import Engagement

HOUR_S = 3600


# A history item is exactly what the ranker reads: post, author, actions taken, surface.
HistoryItem = Engagement


@dataclasses.dataclass
class Query:
    """The viewer and what the request knows about them."""

    user_id: int
    request_time_s: int
    history: list[HistoryItem] = dataclasses.field(default_factory=list)
    following: frozenset[int] = frozenset()
    blocked: frozenset[int] = frozenset()
    muted: frozenset[int] = frozenset()
    muted_keywords: tuple[str, ...] = ()
    seen_post_ids: frozenset[int] = frozenset()
    served_post_ids: frozenset[int] = frozenset()
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Candidate:
    """A post that may be shown; later stages fill the scoring fields."""

    post_id: int
    author_id: int | None = None
    created_s: int | None = None
    text: str = ""
    reply_to_post_id: int | None = None
    repost_of_post_id: int | None = None
    quote_of_post_id: int | None = None
    conversation_id: int | None = None
    quoted_text: str = ""
    source: str = "caller"
    in_network: bool | None = None
    surface: int = 0
    # filled by scorers
    action_probs: Mapping[str, float] | None = None  # an ActionProbs row once scored
    weighted_score: float | None = None
    diversity_multiplier: float = 1.0
    network_multiplier: float = 1.0
    final_score: float | None = None

    @property
    def is_reply(self) -> bool:
        return self.reply_to_post_id is not None

    @property
    def is_repost(self) -> bool:
        return self.repost_of_post_id is not None

    def refresh_final_score(self) -> None:
        """final = weighted × diversity × network, once a weighted score exists."""
        if self.weighted_score is not None:
            self.final_score = self.weighted_score * self.diversity_multiplier * self.network_multiplier

    def age_s(self, now_s: int) -> int | None:
        return None if self.created_s is None else now_s - self.created_s


SESSION_OPTION = "session_id"  # the one request option: a session remembers what it was served


def _check_id(value: Any, field: str, optional: bool = False) -> int | None:
    """A raw id (an integer or a string, as in the log the model was trained on) -> its model id."""
    if value is None and optional:
        return None
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"{field}: is NaN")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{field}: expected an integer or string id, got {value!r}")
    if isinstance(value, str) and not value.strip():
        raise ValueError(f"{field}: empty id")
    return encode_id(value, field)


def _check_surface(value: Any, field: str) -> int:
    """A surface index: an integer >= 0 (never a bool, a float or a digit string: nothing is coerced)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field}: expected an integer surface index, got {value!r}")
    if value < 0:
        raise ValueError(f"{field}: surfaces are >= 0, got {value}")
    return value


def _ids(values: Any, field: str) -> frozenset[int]:
    if not isinstance(values, list | tuple | set | frozenset):
        raise ValueError(f"{field}: expected a list of ids, got {values!r}")
    return frozenset(_check_id(v, f"{field}[{i}]") for i, v in enumerate(values))


def _reject_unknown(data: dict, cls: type, field: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{field}: expected an object, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{field}: unknown field(s) {', '.join(unknown)}")


def history_item_from_dict(data: dict, field: str = "history[0]") -> HistoryItem:
    _reject_unknown(data, Engagement, field)
    actions = data.get("actions", [])
    if not isinstance(actions, list | tuple) or not all(isinstance(a, str) for a in actions):
        raise ValueError(f"{field}.actions: expected a list of action names")
    return HistoryItem(
        post_id=_check_id(data.get("post_id"), f"{field}.post_id"),
        author_id=_check_id(data.get("author_id"), f"{field}.author_id"),
        actions=tuple(actions),
        surface=_check_surface(data.get("surface", 0), f"{field}.surface"),
    )


def query_from_dict(data: dict) -> Query:
    _reject_unknown(data, Query, "user")
    now = data.get("request_time_s")
    if isinstance(now, bool) or not isinstance(now, int):
        raise ValueError(f"user.request_time_s: expected an integer time in seconds, got {now!r}")
    history = data.get("history", [])
    if not isinstance(history, list):
        raise ValueError("user.history: expected a list")
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise ValueError(f"user.options: expected an object, got {options!r}")
    unknown = sorted(set(options) - {SESSION_OPTION})
    if unknown:
        raise ValueError(f"user.options: unknown option(s) {', '.join(map(str, unknown))} (known: {SESSION_OPTION})")
    if SESSION_OPTION in options and not isinstance(options[SESSION_OPTION], str | None):
        raise ValueError(f"user.options.{SESSION_OPTION}: expected a string, got {options[SESSION_OPTION]!r}")
    keywords = data.get("muted_keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise ValueError("user.muted_keywords: expected a list of strings")
    return Query(
        user_id=_check_id(data.get("user_id"), "user.user_id"),
        request_time_s=now,
        history=[history_item_from_dict(h, f"user.history[{i}]") for i, h in enumerate(history)],
        following=_ids(data.get("following", []), "user.following"),
        blocked=_ids(data.get("blocked", []), "user.blocked"),
        muted=_ids(data.get("muted", []), "user.muted"),
        muted_keywords=tuple(keywords),
        seen_post_ids=_ids(data.get("seen_post_ids", []), "user.seen_post_ids"),
        served_post_ids=_ids(data.get("served_post_ids", []), "user.served_post_ids"),
        options=dict(options),
    )


_INPUT_FIELDS = (
    "post_id", "author_id", "created_s", "text", "reply_to_post_id", "repost_of_post_id",
    "quote_of_post_id", "conversation_id", "quoted_text", "source", "in_network", "surface",
)


def candidate_from_dict(data: dict, field: str = "candidates[0]") -> Candidate:
    if not isinstance(data, dict):
        raise ValueError(f"{field}: expected an object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_INPUT_FIELDS))
    if unknown:
        raise ValueError(f"{field}: unknown field(s) {', '.join(unknown)}")
    ids = {
        name: _check_id(data.get(name), f"{field}.{name}", optional=name != "post_id")
        for name in ("post_id", "author_id", "reply_to_post_id", "repost_of_post_id", "quote_of_post_id",
                     "conversation_id")
    }
    created = data.get("created_s")
    if created is not None and (isinstance(created, bool) or not isinstance(created, int)):
        raise ValueError(f"{field}.created_s: expected an integer time in seconds, got {created!r}")
    for name in ("text", "quoted_text", "source"):
        if name in data and not isinstance(data[name], str):
            raise ValueError(f"{field}.{name}: expected a string")
    in_network = data.get("in_network")
    if in_network is not None and not isinstance(in_network, bool):
        raise ValueError(f"{field}.in_network: expected true, false or null, got {in_network!r}")
    return Candidate(
        **ids,
        created_s=created,
        text=data.get("text", ""),
        quoted_text=data.get("quoted_text", ""),
        source=data.get("source", "caller"),
        in_network=in_network,
        surface=_check_surface(data.get("surface", 0), f"{field}.surface"),
    )

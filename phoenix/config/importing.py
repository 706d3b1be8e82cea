"""`[import]`: how a user's impression log maps onto a Phoenix dataset, without renaming their files.

A small TOML file holds one `[import]` table; `phoenix import` flags override
any key. Optional columns left at "" are used under their conventional name
when the log has them (`author_id`, `surface`, `impression_id`, `request_id`,
`time`) and are absent otherwise; a name given explicitly must exist.
"""

from __future__ import annotations

import dataclasses

from phoenix.config.validation import require as _require

TIME_UNITS = ("auto", "s", "ms", "iso")
FORMATS = ("auto", "csv", "tsv", "parquet")


@dataclasses.dataclass(frozen=True)
class ImportConfig:
    """Columns, time, actions and the time split of an impression log."""

    user_id: str = "user_id"
    post_id: str = "post_id"
    author_id: str = ""
    surface: str = ""
    impression_id: str = ""
    request_id: str = ""
    time: str = ""  # "" : the column "time" if present, else file order
    # Integer times: "auto" reads values above 1e11 as milliseconds (1e11 s is the year 5138).
    time_unit: str = "auto"
    actions: tuple[str, ...] = ()  # () : every column that is not one of the above
    valid_fraction: float = 0.1  # of impressions, by time, when no cut times are given
    test_fraction: float = 0.1
    valid_start: str = ""  # a cut time (integer seconds or ISO 8601): valid from here on
    test_start: str = ""
    format: str = "auto"  # by file suffix: .parquet/.pq, .csv, .tsv/.tab
    follows_file: str = ""  # optional side files: (user_id, author_id) and (post_id, author_id[, created])
    posts_file: str = ""
    skip_malformed: bool = False  # drop malformed rows (still counted and reported) instead of failing

    def __post_init__(self) -> None:
        for name in ("user_id", "post_id"):
            _require(bool(getattr(self, name)), f"import.{name}", "needs a column name")
        _require(self.time_unit in TIME_UNITS, "import.time_unit", f"must be one of {', '.join(TIME_UNITS)}")
        _require(self.format in FORMATS, "import.format", f"must be one of {', '.join(FORMATS)}")
        _require(len(set(self.actions)) == len(self.actions), "import.actions", "names must be unique")
        cuts = bool(self.valid_start) + bool(self.test_start)
        _require(cuts in (0, 2), "import.valid_start", "give both valid_start and test_start, or neither")
        if not cuts:
            for name in ("valid_fraction", "test_fraction"):
                _require(0 < getattr(self, name) < 0.5, f"import.{name}", "must be in (0, 0.5)")

    def column_names(self) -> dict[str, str]:
        """Role -> the column the user named for it ("" where left to the convention)."""
        return {name: getattr(self, name)
                for name in ("user_id", "post_id", "author_id", "surface", "impression_id", "request_id", "time")}

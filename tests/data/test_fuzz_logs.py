"""Fuzzing `phoenix import` with CSV logs of mostly good lines and random faults (missing ids, bad
times and labels, lines with the wrong number of fields). Whatever arrives: a strict import either
imports every line or fails with a LogFileError whose examples point at lines that really are bad;
with --skip-malformed it keeps exactly the good lines, counted; never another exception."""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from phoenix.config import import_config
from phoenix.data.dataset import read_impressions, read_metadata
from phoenix.data.ids import encode_id
from phoenix.data.log_import import import_log
from phoenix.data.log_sources import LogFileError

HEADER = "user_id,post_id,time,like,reply"
GOOD = {
    "id": st.sampled_from(["u1", "u2", "42", "-3", "0", "p-9", "7"]),
    "time": st.sampled_from(["seconds", "iso"]),  # of the line's own time
    "label": st.sampled_from(["0", "1"]),
}
BAD = {
    "id": st.sampled_from(["", "  "]),
    "time": st.sampled_from(["", "x", "1.5", "2024-13-01", "99999999999999999999"]),
    "label": st.sampled_from(["", "2", "-1", "yes", "0.5"]),
}
KINDS = ("id", "id", "time", "label", "label")


@st.composite
def lines(draw, position: int):
    """(text, good) for one log line; a fault is a bad value in one field or a wrong field count."""
    fields = [draw(GOOD[kind]) for kind in KINDS]
    seconds = 1_600_000_000 + 3600 * position  # one hour per line, so the time split has lines on each side
    fields[2] = {"seconds": str(seconds), "iso": datetime.fromtimestamp(seconds, UTC).isoformat()}[fields[2]]
    fault = draw(st.sampled_from(["none"] * 6 + ["value", "fields"]))
    if fault == "value":
        i = draw(st.integers(0, len(KINDS) - 1))
        fields[i] = draw(BAD[KINDS[i]])
    elif fault == "fields":
        fields = fields[: draw(st.integers(1, 4))] if draw(st.booleans()) else [*fields, "extra"]
    return ",".join(fields), fault == "none"


@settings(max_examples=150, deadline=None)
@given(st.integers(10, 24).flatmap(lambda n: st.tuples(*(lines(i) for i in range(n)))), st.booleans())
def test_imports_keep_exactly_the_good_lines_or_point_at_bad_ones(log, skip):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.csv"
        path.write_text("\n".join([HEADER, *(text for text, _ in log)]) + "\n")
        good = [text.split(",") for text, ok in log if ok]
        try:
            import_log(path, Path(tmp) / "ds", import_config(skip_malformed=skip, time_unit="auto"))
        except LogFileError as err:
            message = str(err)
            assert str(path) in message, message
            event(message.split(":")[1 if message.startswith(str(path)) else 0][:40])
            if "split is empty" in message:  # a few rows at a few times cannot always be split by time
                assert good, (message, log)
                return
            if "no rows" in message:
                assert not good and (skip or "fields where the header has" in message), (message, log)
                return
            assert not skip and len(good) < len(log), (message, log)  # only a strict import fails on bad lines
            named = [int(n) for n in re.findall(re.escape(str(path)) + r":(\d+)", message)]
            assert named, message
            for line in named:  # line 1 is the header
                assert 2 <= line <= len(log) + 1 and not log[line - 2][1], (line, message, log)
            return
        event("imported")
        assert skip or len(good) == len(log), log
        got = read_impressions(Path(tmp) / "ds")
        meta = read_metadata(Path(tmp) / "ds")
        assert len(got.user_id) == len(good) and meta["malformed"]["rows"] == len(log) - len(good), meta
        expected = sorted((encode_id(u, "u"), encode_id(p, "p"), int(a), int(b)) for u, p, _, a, b in good)
        like, reply = meta["actions"].index("like"), meta["actions"].index("reply")
        actual = sorted(zip(got.user_id.tolist(), got.post_id.tolist(), got.labels[:, like].tolist(),
                            got.labels[:, reply].tolist()))
        assert actual == expected and np.all(np.diff(got.time_s) >= 0)

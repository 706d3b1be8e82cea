"""The bad inputs `bench/bad_inputs.py` tries, family by family.

Each case says what the right answer is: an error whose message matches a
regex naming the field or file, or (`None`) success, for input that only looks
bad (a BOM, a damaged checkpoint with an intact one behind it).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from phoenix.serving.request_files import requests_table

BAD_IDS = [None, "", "  ", 1.5, True, [], {}, float("nan")]
Judge = Callable[[list[str], str | None], tuple[str, str]]


def user_cases(user: dict, candidates: list[dict]) -> list[tuple[str, dict, list, str]]:
    """(name, user dict, candidates, regex the error must match) for bad query fields."""
    cases = []

    def case(name: str, field: str, change: Callable[[dict], None]) -> None:
        bad = copy.deepcopy(user)
        change(bad)
        cases.append((name, bad, candidates, field))

    for value in BAD_IDS:
        case(f"user_id={value!r}", r"user\.user_id", lambda u, v=value: u.update(user_id=v))
    for value in ["x", 1.5, True, None, [], float("nan")]:
        case(f"request_time_s={value!r}", r"user\.request_time_s", lambda u, v=value: u.update(request_time_s=v))
    for value in ["x", {}, 5]:
        case(f"history={value!r}", r"user\.history", lambda u, v=value: u.update(history=v))
    for value in [5, "x", []]:
        case(f"history[0]={value!r}", r"user\.history\[0\]", lambda u, v=value: u["history"].__setitem__(0, v))
    for key, values in {
        "post_id": BAD_IDS, "author_id": BAD_IDS, "actions": ["click", [5], ["teleport"], None, [None]],
        "surface": [-1, 1.5, "3", True, None, 10**6], "extra": [1],
    }.items():
        for value in values:
            field = rf"user\.history\[0\]\.{key}" if key not in ("extra", "surface") else r"history|surface"
            case(f"history[0].{key}={value!r}", field, lambda u, k=key, v=value: u["history"][0].update({k: v}))
    for key in ("following", "blocked", "muted", "seen_post_ids", "served_post_ids"):
        for value in ["x", 5, [None], [1.5], [True], {"a": 1}]:
            case(f"{key}={value!r}", rf"user\.{key}", lambda u, k=key, v=value: u.update({k: v}))
    for value in [5, "x", [1], [None]]:
        case(f"muted_keywords={value!r}", r"user\.muted_keywords", lambda u, v=value: u.update(muted_keywords=v))
    for value in [[], "x", 5, {"sesion_id": "s"}, {"session_id": 5}, {"session_id": ["s"]}]:
        case(f"options={value!r}", r"user\.options", lambda u, v=value: u.update(options=v))
    case("unknown field", r"user: unknown field", lambda u: u.update(flavour="x"))
    return cases


def candidate_cases(user: dict, candidates: list[dict]) -> list[tuple[str, dict, list, str]]:
    """(name, user dict, candidates, regex) for bad candidate fields and lists."""
    cases = []
    fields = {
        "post_id": [v for v in BAD_IDS],
        "author_id": [v for v in BAD_IDS if v is not None],
        "reply_to_post_id": ["", 1.5, True, []],
        "created_s": ["x", 1.5, True, [], float("nan")],
        "surface": [-1, 1.5, "3", True, None, 10**6],
        "in_network": ["no", 1, 0, "true", []],
        "text": [5, None, []],
        "source": [5, []],
        "flavour": ["x"],
    }
    for key, values in fields.items():
        for value in values:
            bad = copy.deepcopy(candidates)
            bad[1][key] = value
            field = r"candidates\[1\]" + (rf"\.{key}" if key not in ("flavour",) else "")
            if key == "surface" and value == 10**6:
                field = r"surface"
            cases.append((f"candidates[1].{key}={value!r}", user, bad, field))
    for value in [5, "x", None, []]:
        cases.append((f"candidates[1]={value!r}", user, [candidates[0], value], r"candidates\[1\]"))
    for value in [5, "x", {"post_id": 1}]:
        cases.append((f"candidates={value!r}", user, value, r"candidates"))
    return cases


def request_file_cases(root: Path, workdir: Path, model, judge: Judge) -> list[tuple[str, Callable]]:
    """Bad `phoenix score` inputs and flags."""
    root.mkdir(parents=True, exist_ok=True)
    actions = list(model.actions)
    good = {"user_id": 3, "history_post_id": [11, 12], "history_author_id": [4, 5],
            "history_actions": [actions[:2], [actions[-1]]], "candidate_post_id": [100, 101],
            "candidate_author_id": [1, 2], "history_surface": [0, 0], "candidate_surface": [0, 0]}
    cases = []
    n = 0

    def score(inputs: list[Path], names: str | None, *flags: str) -> Callable:
        nonlocal n
        n += 1
        out = root / f"out-{n}"
        return lambda: judge(["score", "--workdir", str(workdir), "--input", *map(str, inputs), "--output",
                              str(out), *flags], names)

    def rows_case(name: str, change: Callable[[dict], None], column: str) -> None:
        bad = copy.deepcopy(good)
        change(bad)
        path = root / f"{len(cases):03d}.parquet"
        pq.write_table(requests_table([good, good, bad]), path)
        cases.append((name, score([path], rf"{path.name}.*row 2, column '{column}")))

    for column in ("history_post_id", "history_author_id", "candidate_post_id", "candidate_author_id"):
        rows_case(f"{column} null", lambda r, c=column: r.update({c: None}), column)
        rows_case(f"{column} null item", lambda r, c=column: r[c].__setitem__(0, None), column)
        rows_case(f"{column} one item short", lambda r, c=column: r.update({c: r[c][1:]}),
                  r"\w+': \d items where " + column if column.endswith("post_id") else column)
    rows_case("user_id null", lambda r: r.update(user_id=None), "user_id")
    rows_case("no candidates", lambda r: r.update(candidate_post_id=[], candidate_author_id=[]), "candidate_post_id")
    rows_case("unknown action", lambda r: r["history_actions"].__setitem__(0, ["teleport"]), "history_actions")
    rows_case("null action list", lambda r: r["history_actions"].__setitem__(0, None), "history_actions")
    rows_case("actions null", lambda r: r.update(history_actions=None), "history_actions")
    for column in ("history_surface", "candidate_surface"):
        for value in (-1, 10**6):
            rows_case(f"{column}={value}", lambda r, c=column, v=value: r.update({c: [v, 0]}), column)
    table = requests_table([good])
    for name, bad in {
        "missing column": table.drop(["candidate_author_id"]),
        "float user ids": table.set_column(0, "user_id", pa.array([1.5])),
        "string actions": table.set_column(3, "history_actions", pa.array([["a", "b"]])),
    }.items():
        path = root / f"schema-{len(cases)}.parquet"
        pq.write_table(bad, path)
        cases.append((name, score([path], rf"{path.name}: column")))
    good_path = root / "good.parquet"
    pq.write_table(requests_table([good] * 50), good_path)
    data = good_path.read_bytes()
    for name, content in {"not parquet": b"hello", "empty": b"", "truncated": data[: len(data) // 2],
                          "flipped page bytes": data[:40] + bytes(b ^ 0x5A for b in data[40:200]) + data[200:]}.items():
        path = root / f"{name.replace(' ', '-')}.parquet"
        path.write_bytes(content)
        cases.append((name, score([path], rf"{path.name}")))
    (root / "empty-dir").mkdir(exist_ok=True)
    cases.append(("directory without parquet", score([root / "empty-dir"], r"empty-dir")))
    cases.append(("missing input", score([root / "nope.parquet"], r"nope.parquet")))
    cases.append(("same file twice", score([good_path, good_path], r"good.parquet: given twice")))
    cases.append(("--users-per-batch 0", score([good_path], r"--users-per-batch", "--users-per-batch", "0")))
    cases.append(("--rows-per-part -1", score([good_path], r"--rows-per-part", "--rows-per-part", "-1")))
    cases.append(("--output is a file", lambda: judge(["score", "--workdir", str(workdir), "--input",
                                                       str(good_path), "--output", str(good_path)], r"good.parquet")))

    def rewritten() -> tuple[str, str]:
        out = root / "out-rewritten"
        argv = ["score", "--workdir", str(workdir), "--input", str(good_path), "--output", str(out)]
        first = judge(argv, None)
        if first[0] != "handled":
            return first
        pq.write_table(requests_table([dict(good, user_id=4)] * 50), good_path)  # same size, new content
        return judge(argv, r"differs in: inputs")

    cases.append(("input rewritten in place before a rerun", rewritten))
    return cases


def log_cases(root: Path, judge: Judge) -> list[tuple[str, Callable]]:
    """Bad `phoenix import` logs."""
    root.mkdir(parents=True, exist_ok=True)
    header = "user_id,post_id,time,like\n"
    body = "".join(f"u{i % 7},p{i % 11},{1_600_000_000 + 3600 * i},{i % 2}\n" for i in range(40))
    cases = []

    def imported(name: str, content: bytes | str, names: str | None, *flags: str, suffix: str = ".csv") -> None:
        path = root / f"{len(cases):03d}{suffix}"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        out = root / f"ds-{len(cases)}"
        cases.append((name, lambda: judge(["import", str(path), "--out", str(out), *flags], names)))

    line = r"\d{3}\.csv:\d+"
    imported("missing user id", header + ",p1,1600000000,1\n" + body, line + r": user_id: missing id")
    imported("bad time", header + body + "u1,p1,yesterday,1\n", line + r": time: not a time")
    imported("label 2", header + body + "u1,p1,1600000000,2\n", line + r": like: a label that is not 0/1")
    imported("too many fields", header + body + "u1,p1,1600000000,1,9\n", line + r": 5 fields")
    imported("too few fields", header + "u1,p1\n" + body, line + r": 2 fields")
    imported("no user column", "person,post_id,time,like\n" + body, r"user")
    imported("empty file", "", r"\d{3}\.csv: empty file")
    imported("header only", header, r"\d{3}\.csv: the log has no rows")
    imported("not UTF-8", header.encode() + b"\xff\xfe,p,1,1\n" + body.encode(), r"\d{3}\.csv: not UTF-8")
    imported("unknown extension", header + body, r"\d{3}\.dat: unknown log format", suffix=".dat")
    imported("every line malformed", header + "a\nb\n", r"\d{3}\.csv: the log has no rows", "--skip-malformed")
    imported("unknown --actions column", header + body, r"share", "--actions", "share")
    imported("iso time unit with integer times", header + body, r"time", "--time-unit", "iso")
    imported("cut time not a time", header + body, r"valid_start", "--valid-start", "soon", "--test-start", "later")
    imported("fractions over 1", header + body, r"fraction", "--valid-fraction", "0.7", "--test-fraction", "0.5")
    imported("BOM header", "\ufeff" + header + body, None)
    imported("duplicate impression ids", "impression_id,user_id,post_id,time,like\n"
             + "".join(f"{i // 2 + 1},u{i},p{i},{1_600_000_000 + 3600 * i},1\n" for i in range(40)),
             line + r": a duplicate impression_id")
    for name, column in {"float ids": pa.array([1.5] * 40), "list ids": pa.array([[1]] * 40)}.items():
        table = pa.table({"user_id": column, "post_id": list(range(40)),
                          "time": [1_600_000_000 + 3600 * i for i in range(40)], "like": [1] * 40})
        path = root / f"{name.replace(' ', '-')}.parquet"
        pq.write_table(table, path)
        out = root / f"ds-{name}"
        cases.append((name, lambda p=path, o=out: judge(["import", str(p), "--out", str(o)], r"user_id")))
    cases.append(("missing file", lambda: judge(["import", str(root / "nope.csv"), "--out", str(root / "x")],
                                                 r"nope.csv")))
    return cases


def config_cases(root: Path, config: Path, world: Path, judge: Judge) -> list[tuple[str, Callable]]:
    """Bad `phoenix train` configs (each must fail at load, naming the key)."""
    root.mkdir(parents=True, exist_ok=True)
    text = config.read_text()
    cases = []

    def edited(name: str, old: str, new: str, names: str) -> None:
        assert old in text, old
        path = root / f"{len(cases):03d}.toml"
        path.write_text(text.replace(old, new))
        work = root / f"work-{len(cases)}"
        cases.append((name, lambda: judge(["train", "--config", str(path), "--workdir", str(work), "--data",
                                           str(world)], names)))

    edited("batch size 10^23", "batch_size = 32", "batch_size = 100000000000000000000000", r"batch_size")
    edited("batch size 0", "batch_size = 32", "batch_size = 0", r"batch_size")
    edited("batch size as text", "batch_size = 32", 'batch_size = "32"', r"batch_size")
    edited("batch size 32.5", "batch_size = 32", "batch_size = 32.5", r"batch_size")
    edited("negative learning rate", "learning_rate = 5e-3", "learning_rate = -1.0", r"learning_rate")
    edited("learning rate nan", "learning_rate = 5e-3", "learning_rate = nan", r"learning_rate")
    edited("zero layers", "num_layers = 1", "num_layers = 0", r"num_layers")
    edited("bucket count 2^40", "post_buckets = 16411", "post_buckets = 1099511627776", r"post_buckets")
    edited("embedding dim 10^6", "embedding_dim = 16", "embedding_dim = 1000000", r"embedding_dim")
    edited("empty head name", "[model]\n", '[model]\nactions = ["click", ""]\n', r"actions")
    edited("repeated head name", "[model]\n", '[model]\nactions = ["click", "click"]\n', r"actions")
    edited("unknown key", "num_layers = 1", "num_layers = 1\nnum_layer = 2", r"num_layer")
    edited("unknown section", "[train]", "[trian]\nx = 1\n[train]", r"trian")
    edited("bad TOML", "[train]", "[train", r"\d{3}\.toml: not valid TOML")
    edited("heads not divisible", "num_kv_heads = 1", "num_kv_heads = 3", r"heads")
    edited("missing weights file", "x-2026-08.toml", "nope.toml", r"weights_file")
    edited("dropout 1.5", "[model]\n", "[model]\npost_id_dropout = 1.5\n", r"post_id_dropout")
    edited("warmup longer than training", "warmup_steps = 20", "warmup_steps = 20000", r"warmup_steps")
    cases.append(("missing config", lambda: judge(["train", "--config", str(root / "nope.toml"), "--workdir",
                                                   str(root / "w"), "--data", str(world)], r"nope.toml")))
    return cases


def workdir_cases(root: Path, workdir: Path, config: Path, judge: Judge) -> list[tuple[str, Callable]]:
    """Damaged or edited workdirs, served with `phoenix rank --user-file`."""
    root.mkdir(parents=True, exist_ok=True)
    user = root / "user.json"
    user.write_text(json.dumps({"user_id": 3, "request_time_s": 14 * 86400}))
    cases = []

    def damaged(name: str, damage: Callable[[Path], None], names: str | None) -> None:
        copy_dir = root / f"{len(cases):03d}"

        def run() -> tuple[str, str]:
            shutil.copytree(workdir, copy_dir)
            damage(copy_dir)
            return judge(["rank", "--workdir", str(copy_dir), "--user-file", str(user)], names)

        cases.append((name, run))

    def steps(w: Path) -> list[Path]:
        return sorted((p for p in (w / "checkpoints").iterdir() if p.name.isdigit()), key=lambda p: int(p.name))

    def largest_file(d: Path) -> Path:
        return max((p for p in d.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)

    def flip(path: Path, count: int = 256) -> None:
        data = bytearray(path.read_bytes())
        for i in range(len(data) // 3, min(len(data), len(data) // 3 + count)):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))

    def truncate(path: Path) -> None:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    def edit_config(key: str, value: str) -> Callable[[Path], None]:
        def change(w: Path) -> None:
            text = (w / "config.toml").read_text()
            edited = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
            assert edited != text, key
            (w / "config.toml").write_text(edited)
        return change

    def only_latest_best_removed(w: Path) -> None:
        shutil.rmtree(w / "best", ignore_errors=True)

    damaged("latest checkpoint bytes flipped (an older one is intact)",
            lambda w: (only_latest_best_removed(w), flip(largest_file(steps(w)[-1]))), None)
    damaged("latest checkpoint truncated (an older one is intact)",
            lambda w: (only_latest_best_removed(w), truncate(largest_file(steps(w)[-1]))), None)
    damaged("every checkpoint damaged",
            lambda w: (only_latest_best_removed(w), *(flip(largest_file(s)) for s in steps(w))), r"checkpoint")
    damaged("no checkpoints directory", lambda w: (only_latest_best_removed(w), shutil.rmtree(w / "checkpoints")),
            r"checkpoint")
    damaged("config.toml missing", lambda w: (w / "config.toml").unlink(), r"config.toml")
    damaged("config.toml not TOML", lambda w: (w / "config.toml").write_text("[model"), r"config.toml")
    damaged("hash seed edited", edit_config("hash_seed", "7"), r"hash_seed")
    damaged("post buckets edited (same padded table)", edit_config("post_buckets", "16417"), r"post_buckets")
    damaged("model width edited", edit_config("model_dim", "64"), r"model_dim")
    damaged("actions reordered", lambda w: _reorder_actions(w / "config.toml"), r"actions")
    cases.append(("workdir missing", lambda: judge(["rank", "--workdir", str(root / "nope"), "--user-file",
                                                    str(user)], r"nope")))
    return cases


def _reorder_actions(path: Path) -> None:
    text = path.read_text()
    match = re.search(r"^actions = \[(.*)\]$", text, flags=re.M)
    names = match[1].split(", ")
    path.write_text(text.replace(match[0], f"actions = [{', '.join(names[1:] + names[:1])}]"))

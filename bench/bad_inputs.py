"""Bad input at every entry point, tallied: what a new user might hand Phoenix, and what came back.

Trains a micro workdir on a micro world (about a minute), then tries each case
and sorts the outcome into one of:

* `clear`: the CLI exits 2 with one line naming the field or file (or, for
  `rank()`, a ValueError naming the field);
* `unclear`: the error does not name what the case broke;
* `crash`: a traceback, another exception type, or another exit code;
* `silent`: the bad input was accepted (exit 0, or a result from `rank()`);
* `handled`: a case whose right answer is success (a damaged checkpoint skipped
  for an intact one, a BOM header), and it succeeded.

Prints one JSON line per family (`rank`, `request_files`, `logs`, `configs`,
`workdirs`, and `kills`: `phoenix train` and `phoenix score` SIGKILLed and rerun,
`handled` when the output equals an uninterrupted run's) and a `total` line; the
targets are 0 crashes and 0 silent. Run:
`python bench/bad_inputs.py [--keep DIR]`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from flax import nnx  # noqa: E402

from bench.bad_input_cases import (  # noqa: E402
    candidate_cases,
    config_cases,
    log_cases,
    request_file_cases,
    user_cases,
    workdir_cases,
)
from phoenix import Ranker  # noqa: E402
from phoenix.cli import main  # noqa: E402
from phoenix.serving.request_files import requests_table  # noqa: E402
from phoenix.workdir import load_model  # noqa: E402

MICRO = """
[model]
user_buckets = 401
post_buckets = 16411
author_buckets = 503
embedding_dim = 16
model_dim = 32
num_layers = 1
num_q_heads = 2
num_kv_heads = 1
head_dim = 16
history_len = 16
num_candidates = 16

[world]
num_users = 300
num_authors = 80
num_posts = 1500
num_topics = 8
impressions_per_user = 200.0

[train]
batch_size = 32
num_steps = 200
learning_rate = 5e-3
warmup_steps = 20
checkpoint_every = 100
log_every = 50
eval_every = 200
eval_examples = 128

[pipeline]
weights_file = "WEIGHTS"
"""


def cli(argv: list[str]) -> tuple[int | None, str, BaseException | None]:
    """Run the CLI in this process: (exit code, stderr, an exception that escaped)."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    except SystemExit as stop:  # argparse's own usage errors
        return stop.code if isinstance(stop.code, int) else 1, err.getvalue(), None
    except BaseException as escaped:  # noqa: BLE001 - a crash is what this counts
        return None, err.getvalue(), escaped
    return code, err.getvalue(), None


def judge_cli(argv: list[str], names: str | None) -> tuple[str, str]:
    """`names`: a regex the one-line error must match, or None when success is the right answer.
    Warnings and progress bars on stderr are allowed; the error itself must be one line."""
    code, err, escaped = cli(argv)
    errors = [line for line in re.split(r"[\r\n]+", err) if ": error: " in line]
    if escaped is not None or code not in (0, 2) or "Traceback" in err:
        return "crash", f"{type(escaped).__name__}: {escaped}" if escaped else f"exit {code}: {err[-200:]}"
    if names is None:
        return ("handled", err.strip()[-160:]) if code == 0 else ("unclear", err.strip()[-200:])
    if code == 0:
        return "silent", "accepted"
    clear = len(errors) == 1 and bool(re.search(names, errors[0]))
    return ("clear" if clear else "unclear"), (errors[-1] if errors else err)[:200]


def judge_rank(ranker: Ranker, user: dict, candidates, names: str) -> tuple[str, str]:
    try:
        ranker.rank(user, candidates)
    except ValueError as err:
        return ("clear" if re.search(names, str(err)) else "unclear"), str(err)[:200]
    except Exception as err:  # noqa: BLE001
        return "crash", f"{type(err).__name__}: {err}"
    return "silent", "accepted"


def prepare(tmp: Path) -> tuple[Path, Path, Path]:
    """A micro world, a config and a trained workdir under `tmp`."""
    config = tmp / "micro.toml"
    config.write_text(MICRO.replace("WEIGHTS", str(ROOT / "configs" / "weights" / "x-2026-08.toml")))
    for argv in (["world", "--config", str(config), "--out", str(tmp / "world")],
                 ["train", "--config", str(config), "--workdir", str(tmp / "workdir"), "--data", str(tmp / "world")]):
        code, err, escaped = cli(argv)
        if code != 0:
            raise SystemExit(f"setup failed: {argv[0]}: {escaped or err}")
    return config, tmp / "world", tmp / "workdir"


def killed_and_rerun(argv: list[str], out: Path, delay_s: float, reference: Path, compare) -> tuple[str, str]:
    """SIGKILL `phoenix argv` after `delay_s`, rerun it to the end, and compare with `reference`."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    job = subprocess.Popen([sys.executable, "-m", "phoenix.cli", *argv], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay_s)
    killed = job.poll() is None
    job.send_signal(signal.SIGKILL)
    job.wait()
    rerun = subprocess.run([sys.executable, "-m", "phoenix.cli", *argv], cwd=ROOT, env=env, capture_output=True,
                           text=True)
    if rerun.returncode != 0:
        return "crash", rerun.stderr[-200:]
    same = compare(out, reference)
    return ("handled" if same else "silent"), f"killed at {delay_s:.1f} s: {'same' if same else 'differs'}" + (
        "" if killed else " (finished before the kill)")


def kill_cases(tmp: Path, config: Path, world: Path, workdir: Path, good_requests: Path) -> list:
    """SIGKILLed `phoenix train` and `phoenix score`, each rerun: the output must equal an uninterrupted run's."""
    def same_params(a: Path, b: Path) -> bool:
        left, right = (nnx.to_pure_dict(nnx.state(load_model(w)[0], nnx.Param)) for w in (a, b))
        return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(left), jax.tree.leaves(right)))

    def same_scores(a: Path, b: Path) -> bool:
        return pq.read_table(sorted(a.glob("part-*"))).equals(pq.read_table(sorted(b.glob("part-*"))))

    reference = tmp / "scored-reference"
    cli(["score", "--workdir", str(workdir), "--input", str(good_requests), "--output", str(reference),
         "--rows-per-part", "16"])
    cases = []
    for i, delay in enumerate((4.0, 6.0, 9.0)):
        argv = ["train", "--config", str(config), "--workdir", str(tmp / f"killed-train-{i}"), "--data", str(world)]
        cases.append((f"train killed at {delay} s", lambda a=argv, d=delay, o=tmp / f"killed-train-{i}":
                      killed_and_rerun(a, o, d, workdir, same_params)))
    for i, delay in enumerate((3.5, 4.0, 5.0)):
        out = tmp / f"killed-score-{i}"
        argv = ["score", "--workdir", str(workdir), "--input", str(good_requests), "--output", str(out),
                "--rows-per-part", "16"]
        cases.append((f"score killed at {delay} s", lambda a=argv, d=delay, o=out:
                      killed_and_rerun(a, o, d, reference, same_scores)))
    return cases


def run_family(family: str, cases, outcomes: dict, examples: dict) -> None:
    for name, judge in cases:
        verdict, detail = judge()
        outcomes[family][verdict] += 1
        if verdict in ("crash", "silent", "unclear") or family == "kills":
            examples[family].append(f"{name}: {verdict}: {detail}")


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temporary directory)")
    args = parser.parse_args()
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="phoenix-bad-inputs-"))
    tmp.mkdir(parents=True, exist_ok=True)
    config, world, workdir = prepare(tmp)
    ranker = Ranker.load(workdir)
    good_user, good_candidates = ranker_inputs(ranker)
    families = ("rank", "request_files", "logs", "configs", "workdirs", "kills")
    outcomes: dict[str, Counter] = {f: Counter() for f in families}
    examples: dict[str, list[str]] = {f: [] for f in outcomes}
    rank_cases = [(n, lambda u=u, c=c, m=m: judge_rank(ranker, u, c, m))
                  for n, u, c, m in [*user_cases(good_user, good_candidates),
                                     *candidate_cases(good_user, good_candidates)]]
    run_family("rank", rank_cases, outcomes, examples)
    run_family("request_files", request_file_cases(tmp / "requests", workdir, ranker.service.config, judge_cli),
               outcomes, examples)
    run_family("logs", log_cases(tmp / "logs", judge_cli), outcomes, examples)
    run_family("configs", config_cases(tmp / "configs", config, world, judge_cli), outcomes, examples)
    run_family("workdirs", workdir_cases(tmp / "workdirs", workdir, config, judge_cli), outcomes, examples)
    requests = tmp / "requests-for-kills.parquet"
    pq.write_table(requests_table([request_row(good_user, good_candidates, u) for u in range(1, 2001)]), requests)
    run_family("kills", kill_cases(tmp / "kills", config, world, workdir, requests), outcomes, examples)
    total = Counter()
    for family, counts in outcomes.items():
        total.update(counts)
        print(json.dumps({"family": family, "tried": sum(counts.values()), **dict(sorted(counts.items())),
                          "examples": examples[family][:8]}))
    print(json.dumps({"family": "total", "tried": sum(total.values()), **dict(sorted(total.items())),
                      "target": {"crash": 0, "silent": 0}}))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


def ranker_inputs(ranker: Ranker) -> tuple[dict, list[dict]]:
    """A valid request for the micro world: two history items, three fresh candidates."""
    actions = list(ranker.service.config.actions)
    now = 14 * 86400
    user = {"user_id": 3, "request_time_s": now, "following": [4], "blocked": [66],
            "history": [{"post_id": 11, "author_id": 4, "actions": actions[:2]},
                        {"post_id": 12, "author_id": 5, "actions": [actions[-1]]}]}
    candidates = [{"post_id": 100 + i, "author_id": 1 + i, "created_s": now - 600} for i in range(3)]
    return user, candidates



def request_row(user: dict, candidates: list[dict], user_id: int) -> dict:
    """A `phoenix score` request row from a `rank()` user dict and candidates."""
    history = user["history"]
    return {"user_id": user_id, "history_post_id": [h["post_id"] for h in history],
            "history_author_id": [h["author_id"] for h in history],
            "history_actions": [h["actions"] for h in history],
            "candidate_post_id": [c["post_id"] + user_id for c in candidates],
            "candidate_author_id": [c["author_id"] for c in candidates]}


if __name__ == "__main__":
    main_bench()

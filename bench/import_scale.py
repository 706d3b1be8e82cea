"""Importing and packing a large impression log: 10,000,000 impressions on this CPU.

Generates a log of 200,000 users, 1,000,000 posts (50,000 authors) and 8
actions as Parquet files (not timed), then measures, one JSON line each:

* `read_baseline`: reading the same files whole with pyarrow (the floor any
  importer pays), measured in the same run so the ratios below hold on a busy
  machine;
* `import`: `phoenix import` (validate, encode ids, order by time, split,
  write) in a fresh process, with its peak resident memory;
* `pack`: reading the dataset back and packing the training split into
  examples (history + candidates per window, as training does), in a fresh
  process, with its peak memory;
* `total`: import + pack against the targets (5 minutes, 6 GiB), each as a ratio.

`--impressions`, `--users`, `--posts` scale it down for a quick look.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TARGET_S = 5 * 60
TARGET_GIB = 6.0
ACTIONS = ("like", "reply", "repost", "click", "share", "dwell", "follow", "not_interested")
RATES = (0.05, 0.01, 0.01, 0.15, 0.005, 0.3, 0.002, 0.01)


def write_log(out: Path, impressions: int, users: int, posts: int, files: int = 10, seed: int = 0) -> list[Path]:
    """Parquet files of a synthetic impression log with skewed user and post activity."""
    rng = np.random.default_rng(seed)
    paths = []
    per_file = impressions // files
    for part in range(files):
        n = per_file if part < files - 1 else impressions - per_file * (files - 1)
        user = (rng.zipf(1.3, n) - 1) % users + 1
        post = (rng.zipf(1.2, n) * 7919) % posts + 1
        columns = {
            "user_id": user, "post_id": post, "author_id": post % 50_000 + 1,
            "surface": rng.integers(0, 4, n).astype(np.int32),
            "time": np.sort(rng.integers(1_700_000_000, 1_700_000_000 + 28 * 86_400, n)),
        }
        columns |= {a: (rng.random(n) < r).astype(np.int8) for a, r in zip(ACTIONS, RATES)}
        path = out / f"part-{part:02d}.parquet"
        pq.write_table(pa.table(columns), path, row_group_size=1 << 20)
        paths.append(path)
    return paths


IMPORT = """
import json, resource, sys, time
from phoenix.config import import_config
from phoenix.data.log_import import import_log
start = time.perf_counter()
meta = import_log(sys.argv[1], sys.argv[2], import_config())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"seconds": time.perf_counter() - start, "peak_gib": peak, "counts": meta["counts"]}))
"""

PACK = """
import json, resource, sys, time
from phoenix.data.dataset import read_impressions
from phoenix.data.packing import pack_examples
start = time.perf_counter()
log = read_impressions(sys.argv[1])
read = time.perf_counter() - start
examples = pack_examples(log, "train", 32, 32)
print(json.dumps({"seconds": time.perf_counter() - start, "read_s": read, "examples": len(examples),
                  "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def run(code: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    if result.returncode:
        raise SystemExit(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impressions", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--posts", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "log").mkdir()
        start = time.perf_counter()
        write_log(tmp / "log", args.impressions, args.users, args.posts)
        emit({"stage": "generate", "impressions": args.impressions, "users": args.users, "posts": args.posts,
              "actions": len(ACTIONS), "seconds": round(time.perf_counter() - start, 1)})
        start = time.perf_counter()
        rows = pq.read_table(tmp / "log").num_rows
        baseline = time.perf_counter() - start
        emit({"stage": "read_baseline", "rows": rows, "seconds": round(baseline, 2)})
        imported = run(IMPORT, str(tmp / "log"), str(tmp / "dataset"))
        emit({"stage": "import", "seconds": round(imported["seconds"], 1),
              "vs_read": round(imported["seconds"] / baseline, 1), "peak_rss_gib": round(imported["peak_gib"], 2),
              "counts": imported["counts"]})
        packed = run(PACK, str(tmp / "dataset"))
        emit({"stage": "pack", "seconds": round(packed["seconds"], 1), "read_s": round(packed["read_s"], 1),
              "vs_read": round(packed["seconds"] / baseline, 1), "examples": packed["examples"],
              "peak_rss_gib": round(packed["peak_gib"], 2)})
        total = imported["seconds"] + packed["seconds"]
        peak = max(imported["peak_gib"], packed["peak_gib"])
        emit({"stage": "total", "seconds": round(total, 1), "vs_5min": round(total / TARGET_S, 3),
              "peak_rss_gib": round(peak, 2), "vs_6gib": round(peak / TARGET_GIB, 3)})


if __name__ == "__main__":
    main()

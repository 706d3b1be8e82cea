"""`phoenix score`: score request files with a trained ranker, exactly once, resumably.

Work is cut into parts: (input file, row group, next `rows_per_part` rows).
Each part is decoded, scored and written as its own Parquet file under a
temporary name, then renamed into place; a rename is atomic, so a part file
either exists whole or not at all. A rerun after a kill skips the parts that
exist and redoes the rest, so the output is the same as an uninterrupted run:
no row twice, none missing. `_job.json` pins the inputs (path, size,
modification time and a hash of the Parquet footer), the checkpoint step and
the part size, and a rerun against anything else fails instead of mixing
outputs; a file given twice is refused. The job deletes only its own
temporary files. `_manifest-<process>.json`, written last, lists
every part and its row count.

Memory stays bounded whatever the input size: one part of requests is in
memory at a time. Under `jax.distributed` each process takes every
`process_count`-th input file; the users of each model batch are spread over
the process's local devices by `PrefixScorer`.

Output columns: user_id, post_id, one `p_<action>` column per head, and
`score`, the weighted score of the workdir's scoring config.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import jax
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from phoenix.config import load_scoring_config
from phoenix.data.batch import RequestBatch, featurize
from phoenix.model.weighted_score import WeightedScorer
from phoenix.serving.prefix_scorer import PrefixScorer
from phoenix.serving.request_files import RequestFileError, decode_requests, open_request_file
from phoenix.workdir import load_model

JOB_FILE = "_job.json"
TMP_SUFFIX = ".phoenix-score-tmp"  # this job's own temporary names: the only files it ever deletes
FOOTER_BYTES = 1 << 16


def list_request_files(inputs: Sequence[str | Path]) -> list[Path]:
    """Parquet files named directly or found (sorted) in named directories."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(item.glob("*.parquet"))
            if not found:
                raise FileNotFoundError(f"{item}: directory holds no .parquet files")
            files += found
        elif item.is_file():
            files.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such request file or directory")
    seen: dict[Path, Path] = {}
    for file in files:
        if file.resolve() in seen:
            raise ValueError(f"{file}: given twice (also as {seen[file.resolve()]}): it would be scored twice")
        seen[file.resolve()] = file
    return files


def input_pin(path: Path) -> list:
    """What a rerun must find again: the file's path, size, modification time and a hash of its footer
    (Parquet's metadata, which changes when any row group does), so a rewritten input is refused."""
    stat = path.stat()
    with open(path, "rb") as f:
        f.seek(max(0, stat.st_size - FOOTER_BYTES))
        footer = hashlib.sha256(f.read()).hexdigest()[:16]
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns, footer]


def _write_atomically(path: Path, write) -> None:
    tmp = path.with_name(path.name + TMP_SUFFIX)
    write(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _pin_job(out_dir: Path, job: dict) -> None:
    """Record what this output directory is for; refuse to mix it with another job."""
    path = out_dir / JOB_FILE
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: corrupt job record ({err}); remove the output directory to start over") from err
        if existing != job:
            changed = sorted(k for k in job if existing.get(k) != job[k])
            raise ValueError(f"{path}: output belongs to a different job (differs in: {', '.join(changed)})")
        return
    _write_atomically(path, lambda tmp: tmp.write_text(json.dumps(job, indent=1)))


def _parts(
    file_index: int, path: Path, parquet: pq.ParquetFile, rows_per_part: int
) -> Iterator[tuple[str, str, int, pa.Table]]:
    """(part name, source, its first file row, requests) for every part of one file, in order, one part in
    memory at a time."""
    group_start = 0
    for group in range(parquet.num_row_groups):
        first = 0
        batches = parquet.iter_batches(batch_size=rows_per_part, row_groups=[group])
        while True:
            try:
                batch = next(batches, None)
            except (OSError, pa.ArrowException) as err:  # corrupt pages behind an intact footer
                raise RequestFileError(f"{path}, row group {group}, after row {first}: unreadable ({err})") from err
            if batch is None:
                break
            name = f"part-{file_index:05d}-{group:05d}-{first:09d}.parquet"
            yield name, f"{path} (row group {group})", group_start + first, pa.Table.from_batches([batch])
            first += batch.num_rows
        group_start += parquet.metadata.row_group(group).num_rows


class BatchScorer:
    """Scores decoded requests in user batches and builds the output table."""

    def __init__(self, workdir: str | Path, users_per_batch: int = 64):
        model, config, self.step = load_model(workdir, compute_dtype="serving")
        self.config = config.model
        self.scorer = PrefixScorer(model)
        self.weighted = WeightedScorer(load_scoring_config(config.pipeline.weights_path), self.config.actions)
        self.users_per_batch = users_per_batch

    def score_requests(self, request: RequestBatch, counts: np.ndarray) -> pa.Table:
        """One output row per real candidate, users in input order, candidates in request order."""
        order = np.argsort(counts, kind="stable")  # similar candidate counts batch with little padding
        probs_by_user: list[np.ndarray] = [np.empty(0)] * len(counts)
        for start in range(0, len(order), self.users_per_batch):
            rows = order[start : start + self.users_per_batch]
            width = int(counts[rows].max())
            sub = RequestBatch(**{
                name: (value[rows][:, :width] if name.startswith("candidate_") else value[rows])
                for name, value in vars(request).items()
            })
            probs = self.scorer.probabilities(featurize(sub, self.config))  # [b, width, A]
            for i, row in enumerate(rows):
                probs_by_user[row] = probs[i, : counts[row]]
        probs = np.concatenate(probs_by_user).astype(np.float32)  # [N, A]
        columns = {
            "user_id": np.repeat(request.user_id, counts),
            "post_id": np.concatenate([request.candidate_post_id[i, :n] for i, n in enumerate(counts)]),
        }
        columns |= {f"p_{name}": probs[:, a] for a, name in enumerate(self.config.actions)}
        columns["score"] = self.weighted(probs).astype(np.float32)
        return pa.table(columns)


def score_files(
    workdir: str | Path,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    rows_per_part: int = 4096,
    users_per_batch: int = 64,
    progress: bool = True,
) -> dict:
    """Score every request in `inputs` into `out_dir`; safe to rerun after any interruption."""
    for name, value in (("--rows-per-part", rows_per_part), ("--users-per-batch", users_per_batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: must be a positive integer, got {value!r}")
    files = list_request_files(inputs)
    opened = [open_request_file(f) for f in files]  # every schema checked before any output
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: --output must be a directory, and this is a file")
    out_dir.mkdir(parents=True, exist_ok=True)
    job = BatchScorer(workdir, users_per_batch)
    _pin_job(out_dir, {
        "inputs": [input_pin(f) for f in files],
        "checkpoint_step": job.step,
        "rows_per_part": rows_per_part,
        "actions": list(job.config.actions),
    })
    for stale in out_dir.glob("*" + TMP_SUFFIX):
        stale.unlink()  # what this job was writing when it died (only its own names, and only once pinned)
    process, processes = jax.process_index(), jax.process_count()
    mine = [(i, f, p) for i, (f, p) in enumerate(zip(files, opened)) if i % processes == process]
    total_rows = sum(p.metadata.num_rows for _, _, p in mine)
    manifest = {"parts": {}, "requests": 0, "candidates": 0, "truncated_histories": 0, "skipped_parts": 0}
    bar = tqdm(total=total_rows, unit="req", disable=not progress, desc="scoring")
    for file_index, path, parquet in mine:
        for name, source, first_row, table in _parts(file_index, path, parquet, rows_per_part):
            target = out_dir / name
            if target.exists():
                manifest["skipped_parts"] += 1
                meta = pq.read_metadata(target)
                rows, truncated = meta.num_rows, int(meta.metadata[b"truncated_histories"])
            else:
                decoded = decode_requests(table, job.config, source, first_row)
                try:
                    result = job.score_requests(decoded.request, decoded.candidate_count)
                except ValueError as err:  # the model's own checks: say which rows
                    last = first_row + table.num_rows - 1
                    raise RequestFileError(f"{source}, rows {first_row}-{last}: {err}") from err
                truncated = decoded.truncated_histories
                result = result.replace_schema_metadata({"truncated_histories": str(truncated)})
                _write_atomically(target, lambda tmp, result=result: pq.write_table(result, tmp))
                rows = result.num_rows
            manifest["parts"][name] = rows
            manifest["requests"] += table.num_rows
            manifest["candidates"] += rows
            manifest["truncated_histories"] += truncated
            bar.update(table.num_rows)
            bar.set_postfix(candidates=manifest["candidates"])
    bar.close()
    _write_atomically(out_dir / f"_manifest-{process:05d}.json",
                      lambda tmp: tmp.write_text(json.dumps(manifest, indent=1)))
    return manifest

"""`phoenix score`: right scores, nothing written for bad input, and exactly-once after a kill."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from phoenix.cli import main
from phoenix.serving.batch_scoring import TMP_SUFFIX, score_files
from phoenix.serving.inputs import CandidatePost, Engagement
from phoenix.serving.request_files import RequestFileError, requests_table
from phoenix.serving.service import RankerService
from phoenix.workdir import load_model

REPO = Path(__file__).resolve().parents[2]


def random_requests(rng, actions, users: int, first_user: int = 1) -> list[dict]:
    rows = []
    for u in range(users):
        h, c = int(rng.integers(0, 40)), int(rng.integers(1, 30))
        rows.append({
            "user_id": first_user + u,
            "history_post_id": rng.integers(1, 3000, h).tolist(),
            "history_author_id": rng.integers(1, 100, h).tolist(),
            "history_actions": [[actions[i] for i in np.flatnonzero(rng.random(len(actions)) < 0.2)] for _ in range(h)],
            "history_surface": rng.integers(0, 3, h).tolist(),
            "candidate_post_id": rng.integers(1, 3000, c).tolist(),
            "candidate_author_id": rng.integers(1, 100, c).tolist(),
            "candidate_surface": rng.integers(0, 3, c).tolist(),
        })
    return rows


def write_inputs(directory: Path, actions, files: int, users: int, row_group: int = 64) -> list[dict]:
    directory.mkdir(parents=True, exist_ok=True)
    rng, everything = np.random.default_rng(files * users), []
    for f in range(files):
        rows = random_requests(rng, actions, users, first_user=1 + f * users)
        pq.write_table(requests_table(rows), directory / f"requests-{f}.parquet", row_group_size=row_group)
        everything += rows
    return everything


def read_output(out: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted(out.glob("part-*.parquet"))])


def test_batch_scores_equal_one_request_at_a_time(trained_workdir, tmp_path):
    model, config, _ = load_model(trained_workdir)
    rows = write_inputs(tmp_path / "in", config.model.actions, files=2, users=30, row_group=16)
    manifest = score_files(trained_workdir, [tmp_path / "in"], tmp_path / "out", rows_per_part=7,
                           users_per_batch=4, progress=False)
    out = read_output(tmp_path / "out")
    assert manifest["requests"] == 60 and manifest["candidates"] == out.num_rows
    assert out.num_rows == sum(len(r["candidate_post_id"]) for r in rows)
    service = RankerService(model, config.model, keep_recent_history=True)
    start = 0
    for r in rows:  # output rows are in input order: users, then their candidates
        n = len(r["candidate_post_id"])
        history = [Engagement(p, a, tuple(x), s) for p, a, x, s in zip(
            r["history_post_id"], r["history_author_id"], r["history_actions"], r["history_surface"])]
        expected = service.score(r["user_id"], history, [CandidatePost(p, a, s) for p, a, s in zip(
            r["candidate_post_id"], r["candidate_author_id"], r["candidate_surface"])])
        part = out.slice(start, n)
        assert part.column("user_id").to_pylist() == [r["user_id"]] * n
        assert part.column("post_id").to_pylist() == r["candidate_post_id"]
        got = np.stack([part.column(f"p_{a}").to_numpy() for a in config.model.actions], axis=1)
        np.testing.assert_allclose(got, expected, atol=1e-5)
        start += n


def test_a_bad_file_fails_before_any_output(trained_workdir, tmp_path):
    _, config, _ = load_model(trained_workdir)
    write_inputs(tmp_path / "in", config.model.actions, files=1, users=5)
    pq.write_table(requests_table(random_requests(np.random.default_rng(0), config.model.actions, 3))
                   .drop(["history_actions"]), tmp_path / "in" / "z-bad.parquet")
    with pytest.raises(RequestFileError, match=r"z-bad.parquet: column 'history_actions' is missing"):
        score_files(trained_workdir, [tmp_path / "in"], tmp_path / "out", progress=False)
    assert not list((tmp_path / "out").glob("part-*"))


def test_output_of_one_job_is_not_mixed_with_another(trained_workdir, tmp_path):
    _, config, _ = load_model(trained_workdir)
    write_inputs(tmp_path / "in", config.model.actions, files=1, users=5)
    score_files(trained_workdir, [tmp_path / "in"], tmp_path / "out", rows_per_part=2, progress=False)
    with pytest.raises(ValueError, match="different job .*rows_per_part"):
        score_files(trained_workdir, [tmp_path / "in"], tmp_path / "out", rows_per_part=3, progress=False)


@pytest.mark.slow  # a job killed and rerun: about 30 s
def test_a_killed_job_rerun_gives_exactly_the_uninterrupted_output(trained_workdir, tmp_path):
    _, config, _ = load_model(trained_workdir)
    write_inputs(tmp_path / "in", config.model.actions, files=3, users=300, row_group=50)
    reference = score_files(trained_workdir, [tmp_path / "in"], tmp_path / "reference", rows_per_part=3,
                            progress=False)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "phoenix.cli", "score", "--workdir", str(trained_workdir), "--input",
               str(tmp_path / "in"), "--output", str(out), "--rows-per-part", "3"]
    job = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=os.environ | {"PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 120
    while len(list(out.glob("part-*.parquet"))) < 20 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert job.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    written = len(list(out.glob("part-*.parquet")))
    assert 0 < written < len(reference["parts"]) and not list(out.glob("_manifest-*"))
    resumed = score_files(trained_workdir, [tmp_path / "in"], out, rows_per_part=3, progress=False)
    assert resumed["skipped_parts"] == written and resumed["parts"] == reference["parts"]
    assert not list(out.glob("*.phoenix-score-tmp"))
    assert read_output(out).equals(read_output(tmp_path / "reference"))


def test_the_job_deletes_only_its_own_files_and_refuses_a_refused_run_before_touching_any(trained_workdir, tmp_path):
    _, config, _ = load_model(trained_workdir)
    write_inputs(tmp_path / "in", config.model.actions, files=1, users=5)
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "notes.tmp"
    mine.write_text("the user's own file")
    score_files(trained_workdir, [tmp_path / "in"], out, rows_per_part=2, progress=False)
    stale = out / ("part-00000-00000-000000000.parquet" + TMP_SUFFIX)
    stale.write_text("half a part from a killed run")
    with pytest.raises(ValueError, match="different job"):  # refused: nothing of the earlier run is touched
        score_files(trained_workdir, [tmp_path / "in"], out, rows_per_part=3, progress=False)
    assert stale.exists()
    score_files(trained_workdir, [tmp_path / "in"], out, rows_per_part=2, progress=False)
    assert mine.read_text() == "the user's own file" and not stale.exists()


def test_an_input_rewritten_in_place_or_given_twice_is_refused(trained_workdir, tmp_path):
    _, config, _ = load_model(trained_workdir)
    write_inputs(tmp_path / "in", config.model.actions, files=1, users=6)
    (path,) = list((tmp_path / "in").glob("*.parquet"))
    score_files(trained_workdir, [path], tmp_path / "out", rows_per_part=2, progress=False)
    table = pq.read_table(path)
    rewritten = table.set_column(0, "user_id", pa.array(table.column("user_id").to_numpy()[::-1]))
    pq.write_table(rewritten, path)  # same size, other requests
    with pytest.raises(ValueError, match="different job .*inputs"):
        score_files(trained_workdir, [path], tmp_path / "out", rows_per_part=2, progress=False)
    with pytest.raises(ValueError, match="given twice"):
        score_files(trained_workdir, [path, tmp_path / "in"], tmp_path / "out2", progress=False)


@pytest.mark.parametrize("flags, message", [
    (["--rows-per-part", "0"], "--rows-per-part: must be a positive integer"),
    (["--users-per-batch", "-1"], "--users-per-batch: must be a positive integer"),
])
def test_bad_flags_fail_in_one_line(trained_workdir, tmp_path, capsys, flags, message):
    _, config, _ = load_model(trained_workdir)
    write_inputs(tmp_path / "in", config.model.actions, files=1, users=2)
    (tmp_path / "file").write_text("x")
    for output, expected in ((tmp_path / "out", message), (tmp_path / "file", "must be a directory")):
        extra = flags if expected == message else []
        code = main(["score", "--workdir", str(trained_workdir), "--input", str(tmp_path / "in"), "--output",
                     str(output), *extra])
        err = capsys.readouterr().err.strip()
        assert code == 2 and expected in err and "\n" not in err


def test_content_errors_name_file_row_group_and_column(trained_workdir, tmp_path):
    _, config, _ = load_model(trained_workdir)
    rows = random_requests(np.random.default_rng(3), config.model.actions, 40, first_user=1)
    rows[33]["candidate_surface"] = [99] * len(rows[33]["candidate_post_id"])
    pq.write_table(requests_table(rows), tmp_path / "surfaces.parquet", row_group_size=16)
    expected = r"surfaces.parquet \(row group 2\), row 33, column 'candidate_surface': surface 99"
    with pytest.raises(RequestFileError, match=expected):
        score_files(trained_workdir, [tmp_path / "surfaces.parquet"], tmp_path / "out", progress=False)

    good = requests_table(random_requests(np.random.default_rng(4), config.model.actions, 300, first_user=1))
    pq.write_table(good, tmp_path / "pages.parquet", row_group_size=100, compression="snappy")
    data = bytearray((tmp_path / "pages.parquet").read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 400):  # inside the pages, far from the footer
        data[i] ^= 0x5A
    (tmp_path / "pages.parquet").write_bytes(bytes(data))
    with pytest.raises(RequestFileError, match=r"pages.parquet(, row group \d+|: not a readable)"):
        score_files(trained_workdir, [tmp_path / "pages.parquet"], tmp_path / "out2", progress=False)

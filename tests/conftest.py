import dataclasses
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import MICRO_CONFIG, MICRO_RETRIEVAL  # noqa: E402

from phoenix.config import import_config, replace  # noqa: E402
from phoenix.data.dataset import read_impressions, read_metadata  # noqa: E402
from phoenix.data.log_import import import_log  # noqa: E402
from phoenix.data.world.generator import generate_world  # noqa: E402
from phoenix.data.world.io import write_world  # noqa: E402
from phoenix.retrieval.training import train_retrieval  # noqa: E402
from phoenix.training.ranker import train_and_evaluate  # noqa: E402


@pytest.fixture(scope="session")
def micro_world(tmp_path_factory) -> Path:
    """A small synthetic world on disk, shared by the tests that train."""
    out = tmp_path_factory.mktemp("world")
    return write_world(generate_world(MICRO_CONFIG.world, MICRO_CONFIG.model.actions), out)


@pytest.fixture(scope="session")
def trained_workdir(tmp_path_factory, micro_world) -> Path:
    """A workdir with a short but real training run on the micro world."""
    workdir = tmp_path_factory.mktemp("workdir")
    train_and_evaluate(MICRO_CONFIG, workdir, micro_world, progress=False)
    return workdir


@pytest.fixture(scope="session")
def retrieval_workdir(tmp_path_factory, trained_workdir, micro_world) -> Path:
    """A copy of the trained workdir with a two-tower model and its index of the world's posts."""
    workdir = tmp_path_factory.mktemp("retrieval") / "workdir"
    shutil.copytree(trained_workdir, workdir)
    config = dataclasses.replace(MICRO_CONFIG, retrieval=MICRO_RETRIEVAL)
    train_retrieval(config, workdir, micro_world, progress=False)
    return workdir


@pytest.fixture(scope="session")
def imported_log(tmp_path_factory, micro_world) -> tuple[Path, Path]:
    """The micro world exported as a plain impression CSV with string user and post ids, and imported.

    Returns (the CSV, the dataset directory). No dataset.json of the world, no truth.
    """
    out = tmp_path_factory.mktemp("imported")
    world = read_impressions(micro_world)
    columns = {"user_id": [f"u{u}" for u in world.user_id], "post_id": [f"p{p}" for p in world.post_id],
               "author_id": world.author_id, "surface": world.surface, "time": world.time_s}
    columns |= {a: world.labels[:, i] for i, a in enumerate(world.actions)}
    pacsv.write_csv(pa.table(columns), out / "log.csv")
    split_times = read_metadata(micro_world)["split_times_s"]
    mapping = import_config(valid_start=str(split_times[0]), test_start=str(split_times[1]))
    import_log(out / "log.csv", out / "dataset", mapping)
    return out / "log.csv", out / "dataset"


@pytest.fixture(scope="session")
def imported_workdir(tmp_path_factory, imported_log) -> Path:
    """A short training run on the imported log (its heads taken from the data)."""
    workdir = tmp_path_factory.mktemp("imported_workdir")
    config = replace(MICRO_CONFIG, train={"num_steps": 400, "eval_every": 200, "checkpoint_every": 200})
    train_and_evaluate(config, workdir, imported_log[1], progress=False)
    return workdir

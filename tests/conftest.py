import dataclasses
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import MICRO_CONFIG, MICRO_RETRIEVAL  # noqa: E402

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

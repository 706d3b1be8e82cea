import json

import jax
import numpy as np
import pytest
from flax import nnx
from helpers import MICRO_CONFIG, MICRO_RETRIEVAL

from phoenix.config import replace
from phoenix.retrieval.corpus_index import CorpusIndex
from phoenix.retrieval.retriever import default_index_path
from phoenix.retrieval.training import train_retrieval
from phoenix.retrieval.two_tower import build_two_tower
from phoenix.workdir import restore_params


def test_training_lowers_the_loss_logs_and_plots(retrieval_workdir):
    log = retrieval_workdir / "retrieval" / "metrics.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0] - 0.5
    assert [r["step"] for r in records if "valid_recall" in r] == [MICRO_RETRIEVAL.train.num_steps]
    assert (retrieval_workdir / "retrieval" / "training.png").stat().st_size > 10_000
    index = CorpusIndex.load(default_index_path(retrieval_workdir))
    assert len(index) == 2000 and index.meta["model_step"] == MICRO_RETRIEVAL.train.num_steps


@pytest.mark.slow  # trains twice, once interrupted: about 35 s
def test_interrupted_retrieval_run_resumes_to_the_same_parameters(tmp_path, micro_world):
    schedule = {"num_steps": 6, "warmup_steps": 1, "checkpoint_every": 2, "eval_every": 6, "log_every": 2,
                "eval_examples": 16}
    config = replace(MICRO_CONFIG, retrieval={"train": schedule})
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_retrieval(config, straight, micro_world, progress=False)
    train_retrieval(config, resumed, micro_world, progress=False, max_steps=4)  # "killed" after step 4
    assert not default_index_path(resumed).exists()  # the index is written only by a finished run
    train_retrieval(config, resumed, micro_world, progress=False)
    models = [build_two_tower(config.model, config.retrieval) for _ in range(2)]
    assert restore_params(straight / "retrieval", models[0]) == restore_params(resumed / "retrieval", models[1]) == 6
    params = [nnx.state(m, nnx.Param) for m in models]
    for x, y in zip(jax.tree.leaves(params[0]), jax.tree.leaves(params[1])):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
    logged = [json.loads(x)["step"] for x in (resumed / "retrieval" / "metrics.jsonl").read_text().splitlines()]
    assert logged == [2, 4, 6, 6]  # loss every 2 steps, validation at 6; nothing logged twice by the rerun

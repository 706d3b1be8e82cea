import dataclasses
import json

import jax
import numpy as np
import pytest
from flax import nnx
from helpers import MICRO_CONFIG

from phoenix.config import replace
from phoenix.data.batch import featurize
from phoenix.data.dataset import read_impressions
from phoenix.data.packing import pack_examples
from phoenix.evaluation.ranker import evaluate_workdir
from phoenix.training.ranker import train_and_evaluate
from phoenix.workdir import CheckpointError, ensure_world, load_model, prepare_run

TWO_STEPS = {"num_steps": 2, "warmup_steps": 1, "checkpoint_every": 2, "eval_every": 2, "log_every": 1}


def test_short_run_lowers_loss_and_beats_popularity(trained_workdir):
    records = [json.loads(line) for line in (trained_workdir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0] - 0.01
    report = evaluate_workdir(trained_workdir, split="test")
    assert report["mean"]["auc"] > report["mean"]["baseline_auc"] + 0.03
    assert report["mean"]["auc"] < report["mean"]["oracle_auc"]
    assert (trained_workdir / "training.png").stat().st_size > 10_000


def test_saved_model_reloads_to_identical_logits(trained_workdir, micro_world):
    model_a, config, step = load_model(trained_workdir)
    model_b, _, _ = load_model(trained_workdir)
    assert step == MICRO_CONFIG.train.num_steps
    examples = pack_examples(read_impressions(micro_world), "test", 16, 16).take(np.arange(4))
    batch = featurize(examples.request, config.model)
    np.testing.assert_array_equal(np.asarray(model_a(batch)), np.asarray(model_b(batch)))
    fresh = type(model_a)(config.model, rngs=nnx.Rngs(123))
    assert not np.allclose(np.asarray(fresh(batch)), np.asarray(model_a(batch)))


@pytest.mark.slow  # trains twice, interrupted and whole: about 30 s
def test_interrupted_run_resumes_with_same_step_and_data(tmp_path, micro_world):
    # Checkpoints every 4 steps and losses logged every 3: the resumed run's first logged loss must
    # still average the same steps as the uninterrupted run's.
    schedule = {"num_steps": 12, "warmup_steps": 2, "checkpoint_every": 4, "eval_every": 12, "log_every": 3}
    config = replace(MICRO_CONFIG, train=schedule)
    straight = tmp_path / "straight"
    train_and_evaluate(config, straight, micro_world, progress=False)
    resumed = tmp_path / "resumed"
    train_and_evaluate(config, resumed, micro_world, progress=False, max_steps=8)  # "killed" after step 8
    assert load_model(resumed)[2] == 8
    train_and_evaluate(config, resumed, micro_world, progress=False)
    a, _, step_a = load_model(straight)
    b, _, step_b = load_model(resumed)
    assert step_a == step_b == 12
    for x, y in zip(jax.tree.leaves(nnx.state(a, nnx.Param)), jax.tree.leaves(nnx.state(b, nnx.Param))):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
    logged = [json.loads(line)["step"] for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert logged == sorted(logged) and len(logged) == len(set(logged)) + 1  # eval + loss share step 12

    def losses(workdir):
        records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
        return {r["step"]: r["loss"] for r in records if "loss" in r}

    assert list(losses(resumed)) == [3, 6, 9, 12]
    np.testing.assert_allclose(list(losses(resumed).values()), list(losses(straight).values()), rtol=1e-5)


def test_corrupt_or_missing_checkpoint_is_named(tmp_path, micro_world, capsys):
    config = replace(MICRO_CONFIG, train=TWO_STEPS)
    workdir = tmp_path / "w"
    with pytest.raises(CheckpointError, match="config.toml"):
        load_model(workdir)
    train_and_evaluate(config, workdir, micro_world, progress=False)
    for kept in ("best", "checkpoints"):  # serving loads best/, resuming checkpoints/
        for path in (workdir / kept / "2" / "params").rglob("*"):
            if path.is_file():
                path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"every checkpoint is damaged .*checkpoints/2/params"):
        load_model(workdir)  # best/ is damaged, and so is the training step it falls back to
    assert "best/2" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match=r"checkpoints/2"):
        load_model(workdir, step=2)


def test_refuses_to_resume_with_another_model_shape(tmp_path, micro_world):
    config = replace(MICRO_CONFIG, train=TWO_STEPS)
    train_and_evaluate(config, tmp_path, micro_world, progress=False)
    other = dataclasses.replace(config, model=dataclasses.replace(config.model, model_dim=48))
    with pytest.raises(CheckpointError, match="different \\[model\\] config"):
        train_and_evaluate(other, tmp_path, micro_world, progress=False)


def test_a_workdir_world_from_another_config_is_refused(tmp_path):
    small = replace(MICRO_CONFIG, world={"num_users": 30, "num_authors": 5, "num_posts": 60})
    ensure_world(small, tmp_path)
    assert ensure_world(small, tmp_path) == tmp_path  # same config: reused
    with pytest.raises(ValueError, match="dataset.json: this world was generated from another"):
        ensure_world(replace(small, world={"seed": 7}), tmp_path)


def test_a_resumed_job_keeps_the_world_it_was_started_on(tmp_path, micro_world):
    _, _, first, _ = prepare_run(MICRO_CONFIG, tmp_path, micro_world)
    _, workdir, again, log = prepare_run(MICRO_CONFIG, tmp_path)  # no --data this time
    assert first == again == micro_world.absolute() and not (workdir / "world").exists()
    assert log.actions == MICRO_CONFIG.model.actions

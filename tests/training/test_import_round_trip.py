"""Proof of the import: the same world trained from its own directory and from a plain CSV of its
impressions (no dataset.json of the world, no truth) gives the same per-head AUC."""

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from helpers import MICRO_CONFIG

from phoenix.config import import_config
from phoenix.data.dataset import read_impressions, read_metadata
from phoenix.data.log_import import import_log
from phoenix.evaluation.ranker import evaluate_workdir
from phoenix.training.ranker import train_and_evaluate


@pytest.mark.slow
def test_world_and_its_csv_export_train_to_the_same_auc(trained_workdir, micro_world, tmp_path):
    world = read_impressions(micro_world)
    columns = {"user_id": world.user_id, "post_id": world.post_id, "author_id": world.author_id,
               "surface": world.surface, "time": world.time_s}
    columns |= {a: world.labels[:, i] for i, a in enumerate(world.actions)}
    pacsv.write_csv(pa.table(columns), tmp_path / "log.csv")
    cuts = read_metadata(micro_world)["split_times_s"]
    import_log(tmp_path / "log.csv", tmp_path / "dataset",
               import_config(valid_start=str(cuts[0]), test_start=str(cuts[1])))
    train_and_evaluate(MICRO_CONFIG, tmp_path / "workdir", tmp_path / "dataset", progress=False)
    imported, reference = evaluate_workdir(tmp_path / "workdir"), evaluate_workdir(trained_workdir)
    for head, metrics in reference["heads"].items():
        assert abs(imported["heads"][head]["auc"] - metrics["auc"]) <= 0.005, head
    assert np.isclose(imported["mean"]["auc"], reference["mean"]["auc"], atol=0.005)

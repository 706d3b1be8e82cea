import dataclasses
from pathlib import Path

import pytest

from phoenix.config import (
    CONFIG_DIR,
    DEFAULT_ACTIONS,
    ConfigError,
    PhoenixConfig,
    TrainConfig,
    config_to_toml,
    load_config,
    load_scoring_config,
    replace,
)


@pytest.mark.parametrize("name", ["tiny", "base", "nano"])
def test_shipped_configs_load_and_round_trip(tmp_path, name):
    config = load_config(CONFIG_DIR / f"{name}.toml")
    assert config.model.actions == DEFAULT_ACTIONS and config.model.num_actions == 15
    out = tmp_path / "c.toml"
    out.write_text(config_to_toml(config))
    assert load_config(out) == config


def test_base_and_nano_shapes():
    base = load_config(CONFIG_DIR / "base.toml").model
    assert (base.model_dim, base.num_layers, base.num_q_heads, base.num_kv_heads, base.head_dim) == (128, 4, 2, 2, 64)
    assert base.history_len == 128 and base.ffn_dim == 176  # Grok-1: int(2*128)*2//3 -> 170 -> 176
    nano = load_config(CONFIG_DIR / "nano.toml").model
    assert (nano.model_dim, nano.num_layers, nano.num_q_heads, nano.num_kv_heads, nano.head_dim) == (512, 4, 4, 2, 128)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[model]\nmodel_dimm = 3\n", "model.model_dimm: unknown key"),
        ("[modle]\n", "modle: unknown section"),
        ("[model]\nnum_layers = 'two'\n", "model.num_layers: expected an integer"),
        ("[model]\nnum_q_heads = 3\nnum_kv_heads = 2\n", "model.num_q_heads: must be a multiple"),
        ("[model]\ncompute_dtype = 'float16'\n", "model.compute_dtype"),
        ("[train]\nlearning_rate = -1.0\n", "train.learning_rate: must be positive"),
        ("[world]\nnum_users = 1\n", "world.num_users"),
        ("[model]\nactions = ['like', 'like']\n", "model.actions: names must be unique"),
        ("[model\n", "not valid TOML"),
        ("[pipeline]\nweights_file = 'weights/nope.toml'\n", "pipeline.weights_file: .*nope.toml not found"),
        ("[pipeline]\ntop_k = 10\nresult_size = 20\n", "pipeline.result_size: must be in"),
        ("[mesh]\nmodel = 0\n", "mesh.model: must be at least 1"),
        ("[mesh]\nmodel = 3\n", r"mesh.model: must divide model.table_row_multiple \(64\)"),
        ("[mesh]\nshard_transformer = 1\n", "mesh.shard_transformer: expected"),
        ("[logs]\ncatalogue_bce_weight = -1.0\n", "logs.catalogue_bce_weight: must be >= 0"),
        ("[logs.train]\ntime_budget_s = -5\n", "logs.train.time_budget_s: must be >= 0"),
        ("[logs.train]\nnum_steps = 10\n", "logs.train.num_steps: exactly one of num_steps .* and num_epochs"),
        ("[train]\ndecay = 'linear'\n", "train.decay: must be 'cosine' or 'constant'"),
        ("[train]\nwarmup_steps = 5000\nnum_steps = 100\n", "train.warmup_steps: must be below num_steps"),
        ("[logs]\nbatch_size = 32\n", "logs.batch_size: unknown key"),
        ("[logs]\ncatalogue_excludes_user_items = true\n", "logs.catalogue_excludes_user_items: .*> 0"),
        ("[logs.train]\naverage_decay = 1.0\n", r"logs.train.average_decay: must be in \[0, 1\)"),
        ("[logs]\nrecent_targets = -1\n", "logs.recent_targets: must be >= 0"),
        ("[sasrec.train]\ntime_budget_s = -1\n", "sasrec.train.time_budget_s: must be >= 0"),
        ("[sasrec]\ndropout = 0.2\n", "sasrec.dropout: unknown key"),
        ("[sasrec.train]\nnum_epochs = 0\n", "sasrec.train.num_steps: exactly one"),
        ("[model]\nsequence_match = 'yes'\n", "model.sequence_match: expected true or false"),
        ("[train]\nbatch_size = 100000000000000000000000\n", "train.batch_size: must be at most"),
        ("[model]\nactions = ['like', '']\n", "model.actions: names must be non-empty"),
        ("[model]\npost_buckets = 1000000000000\n", "model.post_buckets: must be at most"),
        ("[model]\nhistory_len = 10000000\n", r"model.history_len: must be in \[1, 65536\]"),
    ],
)
def test_bad_configs_name_the_field_and_file(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml: config file not found"):
        load_config(tmp_path / "nope.toml")


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PhoenixConfig().model.model_dim = 3


def test_weight_files_say_where_numbers_come_from():
    for path in sorted(Path(CONFIG_DIR / "weights").glob("*.toml")):
        scoring = load_scoring_config(path)
        assert scoring.source and scoring.epsilon == 0.001
        assert set(scoring.weights) <= set(DEFAULT_ACTIONS)
    august = load_scoring_config(CONFIG_DIR / "weights" / "x-2026-08.toml")
    assert august.weights["report"] == -234.0 and august.weights["reply"] == 5.0


def test_retrieval_section_is_validated_with_its_own_field_names(tmp_path):
    bad = {
        "[retrieval.train]\nwarmup_steps = 5000": "retrieval.train.warmup_steps: must be below num_steps",
        "[retrieval]\npost_id_dropout = 1.0": "retrieval.post_id_dropout: must be in \\[0, 1\\)",
        "[retrieval]\ntemperature = 0.0": "retrieval.temperature: must be in",
        "[retrieval]\nmax_age_hours = 10.0": "retrieval.max_age_hours: unknown key",  # the age window is [pipeline]'s
        "[retrieval]\nbatch_size = 10": "retrieval.batch_size: unknown key",  # the schedule is [retrieval.train]'s
    }
    for text, message in bad.items():
        path = tmp_path / "c.toml"
        path.write_text(text + "\n")
        with pytest.raises(ConfigError, match=message):
            load_config(path)
    schedule = load_config(CONFIG_DIR / "tiny.toml").retrieval.train
    assert (schedule.batch_size, schedule.num_steps, schedule.warmup_steps) == (64, 600, 50)


def test_one_schedule_block_serves_every_model():
    config = load_config(CONFIG_DIR / "logs.toml")
    blocks = [config.train, config.retrieval.train, config.logs.train, config.sasrec.train]
    assert {type(b) for b in blocks} == {TrainConfig}
    lengths = [(b.num_steps, b.num_epochs) for b in (config.logs.train, config.sasrec.train, config.train)]
    assert lengths == [(0, 50), (0, 1000), (2_000, 0)]  # the log models count epochs, the ranker steps
    assert (config.sasrec.train.adam_b2, config.sasrec.train.decay, config.sasrec.train.weight_decay) == (
        0.98, "constant", 0.0)


def test_jobs_check_only_the_sections_they_use(tmp_path):
    """A log-benchmark config need not describe a retrieval model; each job checks its own sections."""
    path = tmp_path / "c.toml"
    path.write_text('[model]\nactions = ["click", "favorite"]\npost_id_dropout = 0.0\n'
                    '[logs]\ninteraction_action = "click"\nrating_actions = { favorite = [4, 5] }\n')
    config = load_config(path)  # retrieval's default positives are not heads of this model: not an error here
    config.check_logs()
    with pytest.raises(ConfigError, match="retrieval.positive_actions: .* are not in model.actions"):
        config.check_retrieval()
    for text, message in {
        "[logs]\ncatalogue_weight = 1.0\n": "logs.catalogue_weight: .*needs model.sequence_match",
        "[logs]\ncatalogue_bce_weight = 1.0\n": "logs.catalogue_bce_weight: .*needs model.sequence_match",
        "[model]\npost_id_dropout = 0.5\n": "model.post_id_dropout: is not used by training on a log",
    }.items():
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(path).check_logs()


def test_the_kind_of_log_picks_both_models_settings():
    config = load_config(CONFIG_DIR / "logs.toml")
    assert config.logs.profile(106.0) == "dense"  # MovieLens 100K: 106 ratings per user
    assert config.logs.profile(8.8) == "sparse"  # Amazon Beauty: under 9 interactions per user
    dense, sparse = config.sasrec.for_profile("dense"), config.sasrec.for_profile("sparse")
    assert (dense.history_len, dense.dropout_rate) == (200, 0.2)
    assert (sparse.history_len, sparse.dropout_rate) == (50, 0.5)
    assert sparse.train == config.sasrec.train and config.sasrec.train.eval_every == 1  # validated every epoch
    assert config.logs.for_profile("dense") == config.logs
    phoenix_sparse = config.logs.for_profile("sparse")
    assert phoenix_sparse.train.weight_decay == config.logs.sparse_weight_decay != config.logs.train.weight_decay
    assert dataclasses.replace(phoenix_sparse.train, weight_decay=config.logs.train.weight_decay) == config.logs.train
    assert dataclasses.replace(phoenix_sparse, train=config.logs.train) == config.logs
    assert replace(config, logs={"sparse_below": 0.0}).logs.profile(1.0) == "dense"
    for section in (config.logs, config.sasrec):
        with pytest.raises(ValueError, match="'Sparse' is not a kind of log"):
            section.for_profile("Sparse")

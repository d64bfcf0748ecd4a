"""params.yaml becomes frozen dataclasses; every mistake names its key."""

import copy
import dataclasses

import pytest
import yaml

from rnnlab import params, sine
from rnnlab.errors import ParamsError

from conftest import ROOT


def load_with(tmp_path, default_params, edit):
    data = copy.deepcopy(default_params)
    edit(data)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return params.load(path)


def test_default_params_load_as_frozen_dataclasses(root):
    p = params.load(root / "params.yaml")
    assert p.seq_len == 20 and p.seeds == (0, 1, 2, 3, 4) and p.threads == 1
    assert p.sine.models == ("mlp", "rnn", "lstm", "gru")
    assert p.sine.train.lr == 0.0005 and p.sine.model.mlp_widths == (32, 16)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.seq_len = 30


def test_unknown_key_is_named_with_its_path(tmp_path, default_params):
    with pytest.raises(ParamsError, match=r"params\.yaml: unknown key sine\.train\.learning_rate"):
        load_with(tmp_path, default_params, lambda d: d["sine"]["train"].update(learning_rate=0.1))


def test_unknown_top_level_key_is_named(tmp_path, default_params):
    with pytest.raises(ParamsError, match=r"unknown key seqlen"):
        load_with(tmp_path, default_params, lambda d: d.update(seqlen=3))


def test_missing_key_is_named(tmp_path, default_params):
    with pytest.raises(ParamsError, match=r"missing key sine\.train\.epochs"):
        load_with(tmp_path, default_params, lambda d: d["sine"]["train"].pop("epochs"))


@pytest.mark.parametrize("value", [0, -5])
def test_seq_len_must_be_positive(tmp_path, default_params, value):
    with pytest.raises(ParamsError, match=rf"seq_len must be > 0, got {value}"):
        load_with(tmp_path, default_params, lambda d: d.update(seq_len=value))


@pytest.mark.parametrize("value", [0, -1])
def test_epochs_must_be_positive(tmp_path, default_params, value):
    with pytest.raises(ParamsError, match=rf"sine\.train\.epochs must be > 0, got {value}"):
        load_with(tmp_path, default_params, lambda d: d["sine"]["train"].update(epochs=value))


@pytest.mark.parametrize("value", [0, -0.001])
def test_lr_must_be_positive(tmp_path, default_params, value):
    with pytest.raises(ParamsError, match=r"sine\.train\.lr must be > 0"):
        load_with(tmp_path, default_params, lambda d: d["sine"]["train"].update(lr=value))


@pytest.mark.parametrize("value", [0, -16])
def test_hidden_size_must_be_positive(tmp_path, default_params, value):
    with pytest.raises(ParamsError, match=rf"sine\.model\.hidden_size must be > 0, got {value}"):
        load_with(tmp_path, default_params, lambda d: d["sine"]["model"].update(hidden_size=value))


def test_wrong_type_is_named(tmp_path, default_params):
    with pytest.raises(ParamsError, match=r"sine\.train\.epochs must be an integer, got 'many'"):
        load_with(tmp_path, default_params, lambda d: d["sine"]["train"].update(epochs="many"))


def test_exponent_without_dot_is_a_number(tmp_path, default_params):
    # PyYAML reads 1e-3 as a string; `dvc exp run -S sine.train.lr=1e-3` must still work.
    p = load_with(tmp_path, default_params, lambda d: d["sine"]["train"].update(lr="1e-3"))
    assert p.sine.train.lr == 0.001


def test_unknown_model_name_is_refused_naming_the_key(tmp_path, default_params):
    p = load_with(tmp_path, default_params, lambda d: None)  # building a model checks its name again
    choices = r"choose from \['gru', 'lstm', 'mlp', 'rnn'\]"
    with pytest.raises(ParamsError, match=rf"sine\.models: unknown model 'transformer'; {choices}"):
        sine.model_config(p, "transformer")


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seq_len: 20\nsine: [unclosed\n")
    with pytest.raises(ParamsError, match=r"params\.yaml:\d+: not valid YAML"):
        params.load(path)


def test_params_know_the_registry_s_model_names():
    # params.py spells the names out so that reading params never imports the model code
    from rnnlab.models import MODELS

    assert sorted(params.MODEL_NAMES) == sorted(MODELS)
    assert sorted(params.RECURRENT_NAMES) == sorted(k for k, arch in MODELS.items() if arch.recurrent)


@pytest.mark.parametrize("section, models, message", [
    ("sine", ["gru", "transformer"], "sine.models: unknown model 'transformer'; choose from ['gru', 'lstm', 'mlp', 'rnn']"),
    ("ball", ["rnn", "mlp"], "ball.models: 'mlp' has no recurrent state; choose rnn, lstm or gru"),
    ("random_windows", ["gru", "mlp"], "random_windows.models: 'mlp' has no recurrent state; choose rnn, lstm or gru"),
    ("windows", ["mlp", "tcn"], "windows.models: unknown model 'tcn'; choose from ['gru', 'lstm', 'mlp', 'rnn']"),
])
def test_a_bad_model_name_in_any_section_stops_every_stage_up_front(tmp_path, default_params, section, models, message):
    # every stage loads all of params.yaml: the first stage to run refuses, before anything trains
    with pytest.raises(ParamsError) as caught:
        load_with(tmp_path, default_params, lambda d: d[section].update(models=models))
    assert str(caught.value) == f"{tmp_path / 'params.yaml'}: {message}"


def test_a_step_budget_sets_the_epochs_from_the_windows_per_epoch(default_params):
    """The fair protocol: 5700 steps are 150 epochs of 38 windows (seq_len 20), 79 of 72 (seq_len
    10), 380 of 15 (seq_len 50); without a budget, the texts' epochs."""
    default_params["sine"]["train"]["steps"] = 5700
    train = params.parse(default_params).sine.train
    assert [train.epochs_for(n) for n in (38, 72, 15)] == [150, 79, 380]
    default_params["sine"]["train"]["steps"] = None
    assert params.parse(default_params).sine.train.epochs_for(72) == 150


def test_a_step_budget_must_be_positive(default_params):
    default_params["sine"]["train"]["steps"] = 0
    with pytest.raises(ParamsError, match=r"^sine.train.steps must be > 0, got 0$"):
        params.parse(default_params)


@pytest.mark.parametrize(("section", "value", "message"), [
    # torch.manual_seed takes a seed modulo 2**64: -1 and 2**64 - 1 were one replica reported as two seeds
    ("seeds", [-1, 18446744073709551615], "seeds: a seed is an integer from 0 to 9223372036854775807, got -1"),
    ("seeds", 1025, "seeds: at most 1024 seeds, got 1025"),  # a checkpoint holds at most 1024 replicas
    ("seeds", 1_000_000, "seeds: at most 1024 seeds, got 1000000"),  # once 3.4 GB, then a MemoryError
    ("ball.train.seeds", [2 ** 63], "ball.train.seeds: a seed is an integer from 0 to 9223372036854775807, "
                                    "got 9223372036854775808"),
    ("sine.data.seed", -1, "sine.data.seed: a seed is an integer from 0 to 4294967295, got -1"),  # numpy's range
    ("windows.data.seed", 2 ** 32, "windows.data.seed: a seed is an integer from 0 to 4294967295, got 4294967296"),
])
def test_seeds_are_bounded_so_that_each_names_one_generator_state(tmp_path, default_params, section, value, message):
    def edit(data):
        *parents, key = section.split(".")
        target = data
        for part in parents:
            target = target[part]
        target[key] = value

    with pytest.raises(ParamsError) as caught:
        load_with(tmp_path, default_params, edit)
    assert str(caught.value).endswith(message)


def test_dvc_exp_run_set_changes_only_the_lines_it_sets(tmp_path):
    """`dvc exp run -S` writes params.yaml back through DVC's own round trip (apply_overrides:
    hydra, then ruamel), which writes every list in block style and a null as an empty value.
    params.yaml is written in that form already, so an override's diff is the keys it sets."""
    from dvc.utils.hydra import apply_overrides

    before = (ROOT / "params.yaml").read_text()
    written = tmp_path / "params.yaml"
    written.write_text(before)
    apply_overrides(written, ["seq_len=20"])  # the value it has
    assert written.read_text() == before
    apply_overrides(written, ["seq_len=30", "series.column=SUNACTIVITY", "series.arima_order=null"])
    gone = [line for line in before.splitlines() if line not in written.read_text().splitlines()]
    assert [line.split("#")[0].strip() for line in gone] == ["seq_len: 20", "column:", "- 2", "- 0", "- 1"], gone

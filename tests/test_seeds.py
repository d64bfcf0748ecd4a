"""Seeds at scale: `-S seeds=30` asks for seeds 0..29 in one key (a list still works), and the
closed-loop objective's key, ``sine.train.horizon``, is checked like every other; the benchmark of
what many seeds cost runs the training stage as DVC runs it."""

import copy
import dataclasses
import sys

import pytest
import yaml

from rnnlab import params
from rnnlab.errors import ParamsError

from conftest import ROOT, run


def load_with(tmp_path, default_params, **top):
    data = copy.deepcopy(default_params)
    for dotted, value in top.items():
        *path, last = dotted.split("__")
        node = data
        for part in path:
            node = node[part]
        node[last] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return params.load(path)


def test_a_count_of_seeds_is_seeds_zero_to_n_minus_one(tmp_path, default_params):
    assert load_with(tmp_path, default_params, seeds=30).seeds == tuple(range(30))
    assert load_with(tmp_path, default_params, seeds=1).seeds == (0,)  # seed 0: the texts' run
    # several ball seeds train as replicas of one stack: the compiled engine (torch trains one)
    ball = load_with(tmp_path, default_params, ball__train__seeds=20, ball__train__engine="compiled").ball
    assert ball.train.seeds == tuple(range(20))


def test_a_list_of_seeds_still_works_and_the_default_is_the_texts(tmp_path, default_params, root):
    assert params.load(root / "params.yaml").seeds == (0, 1, 2, 3, 4)
    assert load_with(tmp_path, default_params, seeds=[3, 7]).seeds == (3, 7)


@pytest.mark.parametrize(("value", "message"), [
    (0, "seeds must be > 0, got 0"),
    (-3, "seeds must be > 0, got -3"),
    ("many", "seeds must be a list of seeds or a count, got 'many'"),
    (True, "seeds must be a list of seeds or a count, got True"),
    ([1, 1], "seeds must be a non-empty list without repeats"),
    ([0, "a"], r"seeds\[1\] must be an integer"),
])
def test_bad_seeds_are_refused_naming_the_key(tmp_path, default_params, value, message):
    with pytest.raises(ParamsError, match=message):
        load_with(tmp_path, default_params, seeds=value)


def test_the_horizon_defaults_to_teacher_forcing_and_is_checked(tmp_path, default_params, root):
    p = params.load(root / "params.yaml")
    assert p.sine.train.horizon is None and not p.sine.train.closed_loop
    assert load_with(tmp_path, default_params, sine__train__horizon=1).sine.train.closed_loop is False
    assert load_with(tmp_path, default_params, sine__train__horizon=20).sine.train.closed_loop
    with pytest.raises(ParamsError, match=r"sine.train.horizon \(21\) must be at most seq_len \(20\)"):
        load_with(tmp_path, default_params, sine__train__horizon=21)
    with pytest.raises(ParamsError, match=r"sine\.train\.horizon must be >= 0"):
        load_with(tmp_path, default_params, sine__train__horizon=-1)
    with pytest.raises(ParamsError, match=r"sine\.train\.horizon and sine\.train\.sampling are two ways"):
        load_with(tmp_path, default_params, sine__train__horizon=5, sine__train__sampling=0.5)


def test_the_seeds_benchmark_times_the_training_stage_as_dvc_runs_it(tmp_path, default_params):
    params = tmp_path / "params.yaml"
    default_params["sine"]["train"]["epochs"] = 2
    params.write_text(yaml.safe_dump(default_params, sort_keys=False))
    proc = run([sys.executable, str(ROOT / "benchmarks/bench_seeds.py"), "--stage", "--params", str(params),
                "--model", "mlp", "--counts", "1", "3"], ROOT)
    rows = [line.split() for line in proc.stdout.splitlines() if "seeds:" in line]
    assert [row[0] for row in rows] == ["1", "3"], proc.stdout
    assert all(float(row[2]) > 0 for row in rows), proc.stdout


def test_seeds_0_to_4_of_a_100_seed_pass_are_the_5_seed_run_bit_for_bit(tmp_path, default_params):
    """5 seeds of one window each run in one kernel layout (a plain loop per lane), 100 in another
    (per-lane weight copies, vectorised): the same products in the same order, the same numbers."""
    import torch

    from rnnlab import data, sine

    p = load_with(tmp_path, default_params, sine__train__epochs=1)
    values = data.parse_series(data.series_csv(data.noisy_sine(p.sine.data)))
    runs = {n: sine.train(dataclasses.replace(p, seeds=tuple(range(n))), values, "gru") for n in (5, 100)}
    for name in ("train_loss", "test_loss"):
        assert torch.equal(runs[5][1].history[name], runs[100][1].history[name][:, :5]), name
    for five, hundred in zip(runs[5][0].reference_state_dicts(), runs[100][0].reference_state_dicts()[:5]):
        assert all(torch.equal(five[name], hundred[name]) for name in five)

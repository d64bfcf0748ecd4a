"""The sine series: generated as text 003 does, read back strictly, cut into windows."""

import math

import numpy as np
import pytest
import torch

from rnnlab import data
from rnnlab.errors import DataError, ParamsError
from rnnlab.params import SineData

SEED_003 = SineData(points=1000, span_pi=10, noise=0.1, seed=42, train_fraction=0.8)


def test_generated_csv_is_byte_identical_to_text_003():
    # Text 003 computes, with the legacy global stream:
    #   np.random.seed(42); y = sin(linspace(0, 10*pi, 1000)) + np.random.normal(0, 0.1, 1000)
    #   np.savetxt(..., fmt='%.6f')
    # Recomputed here with plain Python formatting instead of np.savetxt.
    np.random.seed(42)
    x = np.linspace(0, 10 * np.pi, 1000)
    y = np.sin(x) + np.random.normal(0, 0.1, 1000)
    expected = "".join(f"{v:.6f}\n" for v in y)

    assert data.series_csv(data.noisy_sine(SEED_003)) == expected


def test_generated_series_starts_with_the_seed_texts_values():
    text = data.series_csv(data.noisy_sine(SEED_003))
    assert text.splitlines()[:3] == ["0.049671", "0.017616", "0.127622"]


def test_parse_series_reads_one_number_per_line():
    assert data.parse_series("1.5\n-2\n3e-1\n").tolist() == [1.5, -2.0, 0.3]


def test_missing_series_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nowhere\.csv: no such file"):
        data.read_series(tmp_path / "nowhere.csv")


def test_split_is_first_80_percent_train():
    split = data.split_series(np.arange(1000.0), 0.8)
    assert split.boundary == 800
    assert split.train.dtype == torch.float32
    assert split.test[0].item() == 800.0 and len(split.test) == 200


@pytest.mark.parametrize(("seq_len", "count"), [(20, 38), (30, 25)])
def test_windows_are_non_overlapping_seq_len_plus_one(seq_len, count):
    windows = data.stateful_windows(torch.arange(800.0), seq_len)
    assert windows.inputs.shape == (count, seq_len, 1)
    assert windows.targets.shape == (count, seq_len, 1)


def test_window_targets_are_inputs_shifted_by_one_and_windows_continue():
    windows = data.stateful_windows(torch.arange(800.0), 20)
    # window 0 covers x0..x20, window 1 covers x21..x41: the next window starts where the
    # previous target ended, so a carried state continues the same series.
    assert windows.inputs[0, :, 0].tolist() == list(range(0, 20))
    assert windows.targets[0, :, 0].tolist() == list(range(1, 21))
    assert windows.inputs[1, 0, 0].item() == 21
    assert windows.targets[-1, -1, 0].item() == 38 * 21 - 1


def test_seq_len_too_long_for_the_training_part_names_seq_len():
    with pytest.raises(ParamsError, match=r"seq_len 800 leaves no training window: 800 training points"):
        data.stateful_windows(torch.arange(800.0), 800)


def test_noise_free_grid_spans_span_pi():
    grid = data.sine_grid(SEED_003)
    assert grid[0] == 0 and math.isclose(grid[-1], 10 * math.pi)

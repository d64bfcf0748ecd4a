"""The real series packaged with statsmodels, extracted without a download: co2's monthly means and
its gaps, checked against a plain-Python average of the weekly file."""

import csv
import io
import sys
from collections import defaultdict

import numpy as np

from rnnlab import data, datasets

from conftest import ROOT, run


def test_co2_monthly_means_are_the_mean_of_each_months_weekly_values_and_empty_months_are_gaps():
    weeks = defaultdict(list)
    months = set()
    for row in csv.DictReader(io.StringIO(datasets.packaged_csv("co2"))):
        month = f"{row['date'][:4]}-{row['date'][4:6]}"
        months.add(month)
        if row["co2"]:
            weeks[month].append(float(row["co2"]))
    frame = datasets.monthly_means(datasets.packaged_csv("co2"))
    assert len(frame) == 526 and frame["month"].iloc[0] == "1958-03" and frame["month"].iloc[-1] == "2001-12"
    gaps = frame.loc[frame["co2"].isna(), "month"].tolist()
    assert gaps == ["1958-06", "1958-10", "1964-02", "1964-03", "1964-04"]
    assert all(not weeks[m] for m in gaps)
    for month, value in zip(frame["month"], frame["co2"]):
        if weeks[month]:
            assert value == sum(weeks[month]) / len(weeks[month]) or abs(value - np.mean(weeks[month])) < 1e-12


def test_the_extract_stages_write_csvs_prepare_series_reads(tmp_path):
    for name, column, rows in (("co2", "co2", 526), ("nile", "volume", 100)):
        run([sys.executable, str(ROOT / "stages" / "extract_series.py"), name, f"{name}.csv"], tmp_path)
        gaps = "interpolate" if name == "co2" else "refuse"
        values = data.read_user_series(tmp_path / f"{name}.csv", column, gaps=gaps)
        assert len(values) == rows and np.isfinite(values).all()
    assert (tmp_path / "nile.csv").read_text() == datasets.packaged_csv("nile")

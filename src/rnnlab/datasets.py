"""Real series that ship inside the installed statsmodels package (no download), for experiment S.

Each is public domain, as the package states (``statsmodels.datasets.<name>.COPYRIGHT``):

- ``sunspots``: yearly sunspot numbers 1700-2008 (``stages/extract_sunspots.py`` copies it as is);
- ``co2``: Mauna Loa weekly CO2 (ppm) 1958-2001, averaged here to monthly means;
- ``nile``: the Nile's yearly flow at Aswan 1871-1970 (100 values, 10^8 m^3), copied as is.
"""

from __future__ import annotations

import io
from importlib import resources

import numpy as np
import pandas as pd


def packaged_csv(name: str) -> str:
    """The text of ``statsmodels/datasets/<name>/<name>.csv``, byte for byte."""
    return (resources.files(f"statsmodels.datasets.{name}") / f"{name}.csv").read_text()


def monthly_means(weekly: str) -> pd.DataFrame:
    """Weekly ``date,co2`` rows (dates YYYYMMDD, empty co2 where the week has no value) -> one row per
    calendar month from the first month to the last: ``month`` (YYYY-MM) and ``co2``, the mean of that
    month's weeks that have a value.

    The gap rule: a month none of whose weeks has a value has no mean; its ``co2`` is left empty
    (a missing value), which ``series.gaps: interpolate`` fills linearly between its neighbours and
    ``series.gaps: refuse`` (the default) refuses, naming the line. Weeks are assigned to the month
    of their date (the week's end, as the file dates them).
    """
    frame = pd.read_csv(io.StringIO(weekly), dtype={"date": str})
    month = pd.to_datetime(frame["date"], format="%Y%m%d").dt.to_period("M")
    means = frame["co2"].groupby(month).mean()  # NaN weeks are skipped; an all-NaN month stays NaN
    months = pd.period_range(means.index.min(), means.index.max(), freq="M")
    means = means.reindex(months)
    return pd.DataFrame({"month": months.strftime("%Y-%m"), "co2": means.to_numpy()})


def co2_csv() -> str:
    """statsmodels' co2 as monthly means, a csv with header ``month,co2`` (empty field: no value)."""
    frame = monthly_means(packaged_csv("co2"))
    return frame.to_csv(index=False, float_format=lambda v: repr(float(v)) if np.isfinite(v) else "")

"""rnnlab's forecaster recipe beside a published peer, darts' ``RNNModel`` (GRU and LSTM), on the
same split, scored by the same backtest, in one run.

Both see the series standardised by its training part's mean and std (``series.scaling:
standard``), both train on the training part only and both stop early on the same validation
slice (its last ``series.forecaster.validation_fraction``), both read ``seq_len`` values before
each origin. Both are scored by rnnlab's backtest: free runs of ``series.horizon`` steps from
``series.origins`` origins spread over the test range, MASE against the training part's one-step
naive error. rnnlab trains its five seeds in one batched pass; darts trains ``--darts-seeds``
models one after another (its default hidden size 25 becomes ours, 16). The ratio of seconds is
what to read (absolute seconds vary with the machine's load).

darts is not a dependency of rnnlab: install it apart, with its pinned versions::

    python -m venv .venv-peer
    .venv-peer/bin/pip install --constraint constraints-peer.txt -e '.[peer]'
    .venv-peer/bin/python benchmarks/bench_peer.py                 # sunspots
    .venv-peer/bin/python benchmarks/bench_peer.py --series nile   # or co2
    .venv-peer/bin/python benchmarks/bench_peer.py --seeds 30      # rnnlab with 30 seeds in one pass
"""

from __future__ import annotations

import rnnlab  # noqa: F401  (first: pins the numerical libraries' CPU code paths, rnnlab/cpu.py)

# isort: split

import argparse
import io
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from rnnlab import data, datasets, evaluation, recipe, references, stats
from rnnlab.params import parse

# each series as the docs' one command runs it (docs/series.md)
SERIES = {
    "sunspots": ({"column": "SUNACTIVITY", "scaling": "standard", "season": 11}, lambda: datasets.packaged_csv("sunspots")),
    "co2": ({"column": "co2", "scaling": "standard", "season": 12, "gaps": "interpolate"}, datasets.co2_csv),
    "nile": ({"column": "volume", "scaling": "standard", "season": None, "horizon": 10}, lambda: datasets.packaged_csv("nile")),
}


def load_series(name: str, params_path: str, seeds: int | None = None):
    keys, text = SERIES[name]
    raw = yaml.safe_load(Path(params_path).read_text())
    if seeds is not None:
        raw["seeds"] = seeds  # the one-key form: seeds 0..seeds-1, as `-S seeds=N`
    raw["series"].update(keys, csv_path=f"{name}.csv", recipe="forecaster", transform="none", arima_order=None)
    p = parse(raw)
    values = data.parse_column(text(), keys["column"], source=name, gaps=keys.get("gaps", "refuse"))
    return p, values


def score(p, x: np.ndarray, runs: np.ndarray) -> dict[str, float]:
    """runs (R, origins, horizon) in the series' units -> the median seed's and the ensemble's MASE."""
    q = references.questions(len(x), recipe.boundary(p, len(x)), p.series)
    truth = torch.from_numpy(np.stack([x[o + 1 : o + 1 + q.horizon] for o in q.origins]))
    scale = evaluation.naive_scale(x[: q.boundary])
    per_seed = evaluation.scores(torch.from_numpy(runs), truth, scale)["mase"].numpy()
    ensemble = evaluation.scores(torch.from_numpy(np.median(runs, 0))[None], truth, scale)["mase"].item()
    return {"mase_median_seed": float(np.median(per_seed)), "mase_ensemble": ensemble, "per_seed": per_seed.tolist()}


def rnnlab_run(p, x: np.ndarray, kind: str):
    units = recipe.Units.fit(x, p)
    z = units.to_model(x)
    start = time.perf_counter()
    model, result, _ = recipe.train(p, x, z, units, kind)
    seconds = time.perf_counter() - start
    q = references.questions(len(x), recipe.boundary(p, len(x)), p.series)
    runs = recipe.free_runs(model, x, z, units, q.origins, q.horizon, p.seq_len)
    return runs, seconds, len(result.history["train_loss"])


def darts_run(p, x: np.ndarray, kind: str, seeds: list[int]):
    from darts import TimeSeries
    from darts.models import RNNModel
    from pytorch_lightning.callbacks import EarlyStopping

    b, v = recipe.boundary(p, len(x)), recipe.validation_start(p, len(x))
    mean, std = x[:b].mean(), x[:b].std()
    series = TimeSeries.from_values(((x - mean) / std).astype(np.float32))
    q = references.questions(len(x), b, p.series)
    fc, runs, seconds, epochs = p.series.forecaster, [], 0.0, []
    work = tempfile.mkdtemp(prefix="darts_")  # darts' checkpoints: the best epoch's weights are read back
    for seed in seeds:
        stop = EarlyStopping(monitor="val_loss", patience=fc.patience, mode="min")
        model = RNNModel(input_chunk_length=p.seq_len, training_length=p.seq_len + 1, model=kind.upper(),
                         hidden_dim=p.sine.model.hidden_size, n_rnn_layers=p.sine.model.num_layers,
                         batch_size=fc.batch_size, n_epochs=fc.epochs, optimizer_kwargs={"lr": fc.lr},
                         random_state=seed, save_checkpoints=True, force_reset=True, model_name=f"peer_{kind}", work_dir=work,
                         pl_trainer_kwargs={"callbacks": [stop], "enable_progress_bar": False, "accelerator": "cpu",
                                            "enable_model_summary": False, "logger": False})
        start = time.perf_counter()
        model.fit(series[:v], val_series=series[v - p.seq_len : b], verbose=False)
        epochs.append(model.epochs_trained)
        model = RNNModel.load_from_checkpoint(f"peer_{kind}", work_dir=work, best=True)  # the best validation epoch's
        seconds += time.perf_counter() - start
        preds = model.predict(n=q.horizon, series=[series[: o + 1] for o in q.origins], verbose=False)
        runs.append(np.stack([s.values()[:, 0] for s in preds]) * std + mean)
    return np.stack(runs), seconds, epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", choices=sorted(SERIES), default="sunspots")
    parser.add_argument("--models", default="gru,lstm")
    parser.add_argument("--seeds", type=int, help="rnnlab's seeds 0..N-1, in one pass (default: the params', five)")
    parser.add_argument("--darts-seeds", type=int, default=1, help="darts models trained per architecture (default 1)")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    p, x = load_series(args.series, args.params, args.seeds)
    rows = []
    for kind in args.models.split(","):
        runs, seconds, epochs = rnnlab_run(p, x, kind)
        rows.append({"forecaster": f"rnnlab {kind}", "seeds": len(p.seeds), **score(p, x, runs),
                     "seconds": seconds, "seconds_per_seed": seconds / len(p.seeds), "epochs": epochs})
        runs, seconds, epochs = darts_run(p, x, kind, list(range(args.darts_seeds)))
        rows.append({"forecaster": f"darts RNNModel {kind.upper()}", "seeds": args.darts_seeds, **score(p, x, runs),
                     "seconds": seconds, "seconds_per_seed": seconds / args.darts_seeds, "epochs": epochs})
    seeds_of = {row["forecaster"]: row.pop("per_seed") for row in rows}
    frame = pd.DataFrame(rows)
    buffer = io.StringIO()
    frame.to_markdown(buffer, index=False, floatfmt=".3g") if _has_tabulate() else frame.to_string(buffer, index=False)
    print(f"{args.series}: backtest MASE ({p.series.origins} origins x {p.series.horizon} steps), seq_len {p.seq_len}")
    print(buffer.getvalue())
    for kind in args.models.split(","):
        ours, peer = (frame.set_index("forecaster").loc[name] for name in (f"rnnlab {kind}", f"darts RNNModel {kind.upper()}"))
        print(f"{kind}: rnnlab {peer['seconds_per_seed'] / ours['seconds_per_seed']:.1f}x faster per seed, "
              f"MASE {ours['mase_median_seed']:.3f} (median seed) / {ours['mase_ensemble']:.3f} (ensemble) "
              f"vs darts {peer['mase_median_seed']:.3f}")
        a, b = seeds_of[f"rnnlab {kind}"], seeds_of[f"darts RNNModel {kind.upper()}"]
        if min(len(a), len(b)) > 1:  # seeds on both sides: the study's test (one darts seed is no sample)
            test = stats.compare(a, b)
            (median_a, low_a, high_a), (median_b, low_b, high_b) = stats.bootstrap_median(a), stats.bootstrap_median(b)
            print(f"{kind}: rnnlab median seed {median_a:.3f} [95% interval {low_a:.3f}, {high_a:.3f}] ({len(a)} seeds) vs "
                  f"darts {median_b:.3f} [{low_b:.3f}, {high_b:.3f}] ({len(b)} seeds): P(an rnnlab seed is below a darts "
                  f"seed) = {test.beats:.2f}, Mann-Whitney p = {test.p:.2g}")


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()

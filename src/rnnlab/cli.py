"""The rnnlab console command: what a person does by hand with the trained models."""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import statistics
import sys
from importlib import metadata
from pathlib import Path

from rnnlab.errors import DataError, RnnlabError

WORDS = """\
rnnlab reproduces five RNN tutorials, "texts" 000-004 (numbered as their files are), as one DVC
pipeline (`dvc repro`). Each text's task is an experiment, named by a letter:
  S  next value of a noisy sine, or of a csv of yours (series.csv_path): texts 003 and 000
  B  a ball's next position from the positions so far: text 004
  W  sliding windows, stacked layers: text 001
  R  random windows, tiny initialisation: text 002
A "seed" is always a random seed. README.md and docs/ say more."""

PROMPT = "History ball locations: "
HISTORY_HELP = ("positions so far, comma-separated integers: 1,3,5,7 or -1,-2,-3 (no `--` needed); "
                "quote a history with spaces: \"1, 3, 5\"")
# No option of ours starts with a digit, so "-1,-2,-3" is a history that argparse took for an option.
NEGATIVE_HISTORY = re.compile(r"-\d")
MAX_LINE = 200_000       # characters of one history: 10 000 positions of up to 19 characters and more
MAX_STEPS = 100_000      # forecast steps: 1e9 once asked for 18.6 GiB before failing
MAX_HISTORY = 1_000_000  # values of a --history csv


def figure_path(value: str) -> str:
    """An argparse type: a figure's file name in a format it can be written in, checked before any work."""
    from rnnlab.io import FIGURE_FORMATS

    kind = Path(value).suffix.lstrip(".").lower() or "png"
    if kind not in FIGURE_FORMATS:
        raise argparse.ArgumentTypeError(f"{value}: a figure is written as {', '.join(f'.{k}' for k in FIGURE_FORMATS)}, "
                                         f"not .{kind}")
    return value


def _load_ball_model(models: Path, metrics: Path, kind: str | None, shards: Path):
    """The requested ball model, or the one with the lowest (median) test MAE in the metrics:
    (kind, one plain module per seed, scale). Where the shards are at hand, a model trained on
    other shards (or by other engine code) is refused."""
    from rnnlab import io, provenance
    from rnnlab.checkpoints import load_checkpoint

    if kind is None:
        if not metrics.exists():
            raise DataError(f"{metrics}: no such file; run `dvc repro evaluate_ball` (or pass --model)")
        scores = io.read_json(metrics)  # refuses NaN: a diverged model cannot be the "lowest" MAE
        scores = scores.get("B") if isinstance(scores, dict) else None  # experiment B's models
        if not scores:
            raise DataError(f"{metrics}: lists no model; run `dvc repro evaluate_ball` (or pass --model)")
        try:
            kind = min(scores, key=lambda k: float(scores[k]["mae"]))
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{metrics}: no test MAE per model; run `dvc repro evaluate_ball` (or pass --model)") from None
    path = models / f"{kind}.pt"
    if not path.exists():
        raise DataError(f"{path}: no such file; run `dvc repro train_ball@{kind}`")
    saved = load_checkpoint(path)
    if saved.cfg.kind != kind:  # a file renamed by hand would otherwise answer as the wrong model
        raise DataError(f"{path}: holds a {saved.cfg.kind} model, not a {kind}; run `dvc repro train_ball@{kind}`")
    scale = saved.extra.get("scale")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise DataError(f"{path}: damaged checkpoint: extra.scale is {scale!r}, not a positive number; "
                        f"run `dvc repro train_ball@{kind}`")
    if shards.is_dir() and any(shards.iterdir()):  # without them it still answers, with a warning (predict_ball)
        provenance.check(path, saved.extra, provenance.ball(shards, scale), f"run `dvc repro train_ball@{kind}`")
    return kind, [saved.reference(r) for r in range(len(saved.seeds))], float(scale)


def training_range(shards: Path, scale: float) -> tuple[int, int]:
    """The lowest and highest position in the training shards (padding excluded), in positions."""
    import torch

    from rnnlab.ball_data import load_split

    lows, highs = [], []
    for padded, lengths in load_split(shards, "training"):
        real = torch.arange(padded.shape[1]) < lengths[:, None]  # (N, T): True up to each row's length
        lows.append(padded[real].min().item())
        highs.append(padded[real].max().item())
    # shards hold integer positions / scale in float32: round back to the integers they were
    return round(min(lows) * scale), round(max(highs) * scale)


def range_warning(history: list[int], known: tuple[int, int]) -> str | None:
    """One line when the history leaves the training range: the model never saw such positions."""
    outside = [x for x in history if not known[0] <= x <= known[1]]
    if not outside:
        return None
    which = f"position {outside[0]} lies" if len(set(outside)) == 1 else f"positions {min(outside)}..{max(outside)} lie"
    return f"warning: {which} outside the training data's range {known[0]}..{known[1]}; the answer is an extrapolation"


def read_line(prompt: str) -> str | None:
    """One line of standard input after ``prompt``, or None at its end. A person at a terminal gets
    ``input``'s line editing; from a pipe or file at most ``MAX_LINE`` characters are read, so
    ``rnnlab predict-ball < /dev/zero`` stops in one line instead of filling the memory (2.4 GB)."""
    if sys.stdin.isatty():
        try:
            return input(prompt)
        except EOFError:
            return None
    print(prompt, end="", flush=True)
    line = sys.stdin.readline(MAX_LINE + 1)
    if line == "":
        return None
    if len(line) > MAX_LINE and not line.endswith("\n"):
        raise DataError(f"standard input: a line of more than {MAX_LINE} characters (a history has at most "
                        f"{MAX_LINE}); stopped reading")
    return line.removesuffix("\n")


def predict_ball(args) -> int:
    from rnnlab import ball, ball_csv

    kind, replicas, scale = _load_ball_model(Path(args.models), Path(args.metrics), args.model, Path(args.shards))
    try:
        known = training_range(Path(args.shards), scale)
    except DataError as exc:  # the models alone still answer; only the warning needs the data
        known = None
        print(f"warning: {exc}; histories are not checked against the training range", file=sys.stderr)

    def answer(line: str) -> str:
        if len(line) > MAX_LINE:
            raise DataError(f"a history of {len(line)} characters (at most {MAX_LINE})")
        history = ball_csv.parse_history(line)
        if known is not None and (warning := range_warning(history, known)):
            print(warning, file=sys.stderr, flush=True)
        answers = [ball.predict_history(model, history, scale) for model in replicas]
        if not all(math.isfinite(a) for a in answers):  # the loader refuses NaN weights; an overflow is left
            raise DataError(f"the {kind} model answers {answers[0]}, not a position (its numbers overflow); retrain it")
        if len(answers) == 1:
            return f"Next ball location: {answers[0]:.4f}"
        return (f"Next ball location: {statistics.median(answers):.4f} "
                f"(median of {len(answers)} seeds; range {min(answers):.4f} to {max(answers):.4f})")

    if args.history is not None:
        print(answer(args.history))
        return 0
    seeds = "" if len(replicas) == 1 else f" ({len(replicas)} seeds)"
    print(f"rnnlab: {kind.upper()} ball model{seeds}; type positions like 1,3,5,7 (Ctrl-D to quit)", file=sys.stderr)
    while True:
        line = read_line(PROMPT)
        if line is None:
            print()
            return 0
        try:
            print(answer(line))
        except DataError as exc:
            print(f"error: {exc}")


def report(args) -> int:
    from rnnlab import report as study_report

    repo, table = Path(args.repo), Path(args.table)
    if args.check:
        return check_queue(study_report, repo, args.rev)
    if args.source:
        study, evidence = study_report.load_evidence(Path(args.source)), None
        print(f"from {args.source}: {len(study.runs)} runs")
    else:
        rows = study_report.exp_show(repo, args.all_commits, args.rev)
        study = study_report.collect(rows, study_report.git_reader(repo))
        evidence = Path(args.evidence) if args.evidence else study_report.evidence_folder(table)
        experiments = any(commit.get("experiments") for commit in rows if commit.get("rev") != "workspace")
        if not experiments and (repo / study_report.DEFAULT_EVIDENCE).is_dir():
            # a fresh clone has no experiments: the committed study's evidence still rebuilds it
            print(f"no experiments make a study here; rebuilding the committed one from {study_report.DEFAULT_EVIDENCE}/",
                  file=sys.stderr)
            study, evidence = study_report.load_evidence(repo / study_report.DEFAULT_EVIDENCE), None
    try:
        runs = study_report.write(study, Path(args.figure), table, args.force, evidence)
    finally:  # above all when too few runs are left: the skipped ones say why
        for name, why in study.skipped:
            print(f"skipped {name}: {why}", file=sys.stderr)
    print(f"{len(runs)} sequence lengths ({', '.join(map(str, runs))}) -> {args.figure}, {args.table}"
          + (f", evidence {evidence}/" if evidence else ""))
    for model, recipe in study_report.tuned(study_report.grid(study), study.models).items():
        print(f"tuned {model} (by validation MSE): {recipe}")
    return 0


def check_queue(study_report, repo: Path, rev: str | None) -> int:
    """`rnnlab report --check`: each queued experiment joins the study, or the reason it would not."""
    verdicts = study_report.check_queue(study_report.exp_show(repo, False, rev))
    if not verdicts:
        raise RnnlabError("no queued experiments to check: queue the sweep first "
                          "(dvc exp run --queue -S seq_len=10,20,30), then `rnnlab report --check`")
    for name, why in verdicts:
        print(f"{name}: {'joins the study' if why is None else 'would be skipped: ' + why}")
    refused = sum(why is not None for _, why in verdicts)
    if refused:
        print(f"error: {refused} of {len(verdicts)} queued experiments would be skipped after they ran; remove them "
              "(dvc queue remove NAME) and queue them again varying only seq_len, the recipe keys, seeds and "
              "series.origins", file=sys.stderr)
        return 1
    print(f"all {len(verdicts)} queued experiments join the study: dvc queue start -j 1")
    return 0


def forecast(args) -> int:
    from rnnlab import data, io, params, plotting
    from rnnlab import forecast as forecasting

    if args.steps > MAX_STEPS:
        raise DataError(f"--steps must be at most {MAX_STEPS}, got {args.steps}")
    p = params.load(args.params)
    column = args.column if args.column is not None else p.series.column  # by default the one it trained on
    history = data.read_user_series(args.history, column, p.series.gaps) if args.history else None  # never empty
    if history is not None and len(history) > MAX_HISTORY:
        raise DataError(f"{args.history}: {len(history)} values (at most {MAX_HISTORY}); give the recent ones")
    model = args.model
    if model is None:  # as predict-ball picks its best: the run's chosen network
        from rnnlab import scores

        model, why = scores.forecaster_to_use(io.read_json(args.detail), list(p.sine.models))
        print(f"--model {model}: {why} in {args.detail}", file=sys.stderr)
    result = forecasting.forecast(p, Path(args.prepared), Path(args.models), model, args.steps, history)
    if not all(math.isfinite(v) for v in result.runs.flat):  # the loader refuses NaN weights; an overflow is left
        raise DataError(f"{Path(args.models) / model}.pt: the forecast overflows (NaN or infinity); "
                        "retrain the model or shorten --steps")
    # the steps' times, where the csv continued has a column of them (a month, a year)
    times = forecasting.calendar(args.history or p.series.csv_path, column)
    frame = result.frame(times)
    if args.out:
        io.write_text(args.out, frame.to_csv(index=False))
    if args.plot:
        shown = p  # the footer names the values continued: --history's, not the training series'
        if args.history:
            continued = f"{args.history} (continued; trained on {p.series.csv_path})"
            shown = dataclasses.replace(p, series=dataclasses.replace(p.series, csv_path=continued, column=column))
        figure = plotting.forecast(result.history, frame, model, result.seeds, caption=plotting.sine_caption(shown))
        io.save_figure(args.plot, figure)
    if not args.out:
        columns = ["step", *([times.name] if times else []), "median", "min", "max"]
        print(frame[columns].to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    else:
        print(f"{model}: {len(frame)} steps -> {args.out}" + (f", {args.plot}" if args.plot else ""))
    return 0


def docs(args: argparse.Namespace) -> int:
    from rnnlab import docs as pages

    stale = pages.run(Path(args.root), check=args.check)
    for line in stale:
        if args.check:
            print(line, file=sys.stderr)
        else:
            print(line.replace("differs from", "rewritten from"))
    if args.check and stale:
        print("run `rnnlab docs` and commit the pages", file=sys.stderr)
        return 1
    return 0


def scores(args: argparse.Namespace) -> int:
    from rnnlab import scores as board

    detail = board.read_detail(args.detail, args.rev, args.repo)
    found = board.scores(detail, args.measure)
    where = f"{args.rev}:{args.detail}" if args.rev else args.detail
    print(f"Experiment S ({where}), every forecaster by {args.measure}, lowest first:\n")
    print(board.render(found, args.measure))
    if against := board.against_best_reference(detail, args.measure, args.against):
        print("\n" + "\n".join(against))
    return 0


def status(args: argparse.Namespace) -> int:
    from rnnlab import workspace

    print(workspace.describe(workspace.status(Path(args.repo))))
    return 0


def cpu(args: argparse.Namespace) -> int:
    from rnnlab import cpu as pins

    off = sorted(pins.unpinned())
    state = f"off for {', '.join(off)} (RNNLAB_CPU): outputs depend on this CPU" if off else "on"
    print(f"CPU: {pins.machine()}")
    print(f"CPU code-path pins: {state}")
    for library, path in pins.paths().items():
        print(f"  {library:<36} {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rnnlab", description=__doc__, epilog=WORDS,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('rnnlab')}")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("predict-ball", help="predict a ball's next position from its history (text 004)",
                            description="Predict a ball's next position. Without HISTORY, asks for one per line. "
                                        "A model trained with several seeds answers their median and range.")
    p.add_argument("history", nargs="?", help=HISTORY_HELP)
    p.add_argument("--model", choices=["rnn", "lstm", "gru"], help="default: the lowest test MAE in --metrics")
    p.add_argument("--models", default="models/ball", help="folder of trained ball models (default %(default)s)")
    p.add_argument("--metrics", default="metrics/ball.json", help="ball metrics (default %(default)s)")
    p.add_argument("--shards", default="data/ball/shards",
                   help="the training shards, for the range of positions the model saw (default %(default)s)")
    p.set_defaults(run=predict_ball)

    f = commands.add_parser("forecast", help="continue experiment S's series with a trained model, every seed",
                            description="Forecast the steps after the series (or after --history) with a trained "
                                        "S model: the seeds' median and their range, printed or written.")
    f.add_argument("--detail", default="metrics/sine_detail.json",
                   help="evaluate_sine's detail, to choose --model when none is named (default %(default)s)")
    f.add_argument("--model", choices=["mlp", "rnn", "lstm", "gru"],
                   help="which trained S model continues the series: its checkpoint in --models holds one "
                        "replica per seed, and the forecast is their median and range (default: the run's network "
                        "chosen on its validation slice, else the lowest median backtest MSE in --detail)")
    f.add_argument("--steps", type=int, default=50, help="how many steps to forecast (default %(default)s)")
    f.add_argument("--history", help="a csv of your own recent values to continue instead of the series "
                                     "(one number per line, or name --column)")
    f.add_argument("--column", help="the column of --history to read (default: series.column, the one the model "
                                    "trained on; none: one number per line)")
    f.add_argument("--out", help="write every step and seed to this csv instead of printing the summary")
    f.add_argument("--plot", type=figure_path, help="also draw the forecast to this PNG")
    f.add_argument("--models", default="models/sine", help="folder of trained S models (default %(default)s)")
    f.add_argument("--prepared", default="data/series",
                   help="prepare_series' folder: scaled.csv and scaling.json (default %(default)s)")
    f.add_argument("--params", default="params.yaml", help="default %(default)s")
    f.set_defaults(run=forecast)

    r = commands.add_parser("report", help="the sequence-length study from the DVC experiments (text 000's exercise)",
                            description="Read the experiments through `dvc exp show --json` and write a figure, "
                                        "a markdown table of rollout MSE against seq_len, and the per-seed evidence "
                                        "that rebuilds both (--from). A run joins when it differs from its commit in "
                                        "seq_len, the recipe keys (sine.train.steps, lr, sampling, horizon, "
                                        "sine.model.hidden_size, sine.data.validation_fraction: each its own protocol) "
                                        "and seeds / series.origins only, and its dvc.lock shows evaluate_sine ran at "
                                        "its params with its commit's code; any other run is listed as skipped, with "
                                        "the reason.")
    r.add_argument("--all-commits", action="store_true", help="experiments of every commit, not only HEAD's")
    r.add_argument("--rev", help="the experiments of this commit instead of HEAD's (a study queued before later commits)")
    r.add_argument("--repo", default=".", help="the DVC repository (default: here)")
    r.add_argument("--figure", default="plots/seq_len_study.png", type=figure_path, help="default %(default)s")
    r.add_argument("--table", default="plots/seq_len_study.md", help="default %(default)s")
    r.add_argument("--from", dest="source", metavar="FOLDER",
                   help="rebuild from a study's evidence folder (seeds.csv, runs.json; plots/seq_len_study/) instead "
                        "of the experiments; without experiments that make a study, the committed one is used")
    r.add_argument("--evidence", metavar="FOLDER",
                   help="where to keep the study's per-seed results (default: beside --table, named as it is)")
    r.add_argument("--force", action="store_true",
                   help="overwrite the table and figure even if they hold a study of more trainings")
    r.add_argument("--check", action="store_true",
                   help="before `dvc queue start`: say of each queued experiment whether it will join the study "
                        "(exit 1 if any would be skipped); writes nothing")
    r.set_defaults(run=report)

    d = commands.add_parser("docs", help="write the tables of README.md and docs/*.md from metrics/*.json",
                            description="Rewrite every generated table (between <!-- table:NAME --> and "
                                        "<!-- /table -->) of README.md and docs/*.md from the committed outputs.")
    d.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 naming each page and table that differs from a fresh render")
    d.add_argument("--root", default=".", help="the repository (default: here)")
    d.set_defaults(run=docs)

    b = commands.add_parser("scores", help="who won experiment S: every network and classical reference, sorted",
                            description="Every forecaster of experiment S (each network's median seed with its range, "
                                        "its seed ensemble, every classical reference) sorted by one measure, the "
                                        "winner marked; the workspace's run, or an experiment's (--rev).")
    b.add_argument("--measure", default="backtest_mse", choices=["backtest_mse", "rollout_mse", "one_step_mse",
                   "backtest_mase", "rollout_mase", "one_step_mase", "backtest_mae", "rollout_mae", "one_step_mae"],
                   help="lower is better (default %(default)s: the rolling origins, a forecaster's measure)")
    b.add_argument("--rev", help="an experiment (its name, as `dvc exp list` prints it) or a commit, instead of the workspace")
    b.add_argument("--against", metavar="REFERENCE",
                   help="set each network's seeds against this reference (autoreg, ets, ...) instead of the best")
    b.add_argument("--detail", default="metrics/sine_detail.json", help="default %(default)s")
    b.add_argument("--repo", default=".", help="the repository (default: here)")
    b.set_defaults(run=scores)

    s = commands.add_parser("status", help="after dvc repro: are the outputs the commit's, and where are the results",
                            description="Say whether dvc.lock, metrics/ and plots/ are the commit's byte for byte "
                                        "(and what to do when this machine made other bytes), then where to look.")
    s.add_argument("--repo", default=".", help="the repository (default: here)")
    s.set_defaults(run=status)

    c = commands.add_parser("cpu", help="the code path each numerical library runs here (pinned: the same on every CPU)",
                            description="Print the code path numpy, OpenBLAS, MKL, ATen and oneDNN run in rnnlab's "
                                        "processes, as each library reports it (docs/reproducibility.md).")
    c.set_defaults(run=cpu)

    args = parse(parser, argv)
    try:
        return args.run(args)
    except RnnlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C at the prompt: one line, the shell's usual 130
        print("\ninterrupted", file=sys.stderr)
        return 130


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parse_args``, except that a history starting with a negative number (``-1,-2,-3``),
    which argparse sets aside as an unknown option, is taken as the history."""
    args, unknown = parser.parse_known_args(argv)
    if args.command == "predict-ball" and args.history is None and len(unknown) == 1 and NEGATIVE_HISTORY.match(unknown[0]):
        args.history, unknown = unknown[0], []
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def console() -> None:
    """Entry point of the installed ``rnnlab`` command."""
    try:
        sys.exit(main())
    except BrokenPipeError:  # `rnnlab scores | head`: the reader left, nothing more to say
        sys.stderr.close()
        sys.exit(0)


if __name__ == "__main__":
    console()

"""The tables of README.md and docs/ are written from metrics/, and a stale page fails the check."""

import json
import shutil

import pytest

from rnnlab import docs
from rnnlab.cli import main

from conftest import ROOT


def copy_docs(dest):
    """What `rnnlab docs` reads and writes: the pages, the metrics, the study, the benchmarks'
    results (the measured times and bytes) and params.yaml."""
    shutil.copy2(ROOT / "README.md", dest / "README.md")
    shutil.copytree(ROOT / "benchmarks/results", dest / "benchmarks/results")
    shutil.copytree(ROOT / "docs", dest / "docs")
    shutil.copytree(ROOT / "metrics", dest / "metrics")
    shutil.copy2(ROOT / "params.yaml", dest / "params.yaml")
    (dest / "plots").mkdir()
    shutil.copy2(ROOT / docs.STUDY, dest / docs.STUDY)  # `rnnlab report`'s study tables
    return dest


def test_the_committed_pages_match_a_fresh_render(capsys):
    status = main(["docs", "--check", "--root", str(ROOT)])
    assert status == 0, capsys.readouterr().err


def test_every_table_is_used_by_a_page():
    used = {name for page in docs.pages(ROOT) for name in docs.used(page.read_text())}
    assert used == set(docs.TABLES)


def test_a_changed_metric_fails_the_check_naming_page_and_table_then_docs_rewrites_it(tmp_path, capsys):
    root = copy_docs(tmp_path)
    for name in ("windows", "windows_detail"):  # evaluate_windows writes the median into both
        path = root / f"metrics/{name}.json"
        windows = json.loads(path.read_text())
        windows["W"]["mlp"]["one_step_mse"] = 0.0123456
        path.write_text(json.dumps(windows))

    assert main(["docs", "--check", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "docs/windows.md: table 'windows-results' differs" in err, err
    assert "README.md: table 'results' differs" in err, err  # the README names the best W model's number
    assert "docs/sine.md" not in err  # only what reads the metric is stale
    before = (root / "docs/windows.md").read_text()
    assert "0.0123" not in before

    assert main(["docs", "--root", str(root)]) == 0
    after = (root / "docs/windows.md").read_text()
    assert "| 0.0123 [0.0131, 0.0151] |" in after
    assert main(["docs", "--check", "--root", str(root)]) == 0
    # nothing but the table changed
    strip = lambda text: docs.MARKER.sub("", text)  # noqa: E731
    assert strip(before) == strip(after)


def test_a_rerun_study_rewrites_the_study_pages_table_from_its_own_tables(tmp_path, capsys):
    root = copy_docs(tmp_path)
    study = root / docs.STUDY
    study.write_text(study.read_text().replace("| 0.0314 [0.0225, 0.0388] |", "| 0.0299 [0.0211, 0.0377] |")
                     .replace("| 70% [52%, 83%] |", "| 73% [56%, 86%] |"))
    assert main(["docs", "--check", "--root", str(root)]) == 1
    assert "docs/study.md: table 'study-findings' differs" in capsys.readouterr().err
    assert main(["docs", "--root", str(root)]) == 0
    page = (root / "docs/study.md").read_text()
    assert "| GRU | 0.718 [0.481, 0.795] | 0.0599 [0.0251, 0.218] | 0.0299 [0.0211, 0.0377] |" in page
    assert "| GRU hold rate | 0% [0%, 11%] | 47% [30%, 64%] | 73% [56%, 86%] |" in page


def test_a_study_without_the_texts_protocol_names_the_file_and_what_makes_it(tmp_path, capsys):
    root = copy_docs(tmp_path)
    (root / docs.STUDY).write_text("## Protocol: horizon 20\n")
    assert main(["docs", "--check", "--root", str(root)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "seq_len_study.md: no table 'Rollout test MSE, final epoch'" in err[-1]
    assert "run `rnnlab report`" in err[-1]


def test_a_hand_edited_table_is_stale(tmp_path, capsys):
    root = copy_docs(tmp_path)
    page = root / "docs/sine.md"
    page.write_text(page.read_text().replace("| **0.0171** |", "| **0.0170** |"))
    assert main(["docs", "--check", "--root", str(root)]) == 1
    assert "docs/sine.md: table 'sine-results' differs" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("<!-- table:nosuch -->\n<!-- /table -->\n", "docs/extra.md:3: unknown table 'nosuch' (known: results, "),
    ("<!-- table:windows-results -->\n| x |\n", "docs/extra.md:3: table 'windows-results' has no closing"),
])
def test_a_bad_marker_is_one_line_naming_page_and_line(tmp_path, capsys, text, message):
    root = copy_docs(tmp_path)
    (root / "docs/extra.md").write_text("# extra\n\n" + text)
    assert main(["docs", "--check", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}"), err
    assert len(err.strip().splitlines()) == 1


def test_a_missing_metrics_file_names_it(tmp_path, capsys):
    root = copy_docs(tmp_path)
    (root / "metrics/gates.json").unlink()  # read by docs/theory.md alone
    page = root / "docs/sine.md"  # a stale page that renders fine, before the one that fails
    page.write_text(page.read_text().replace("| **0.0171** |", "| **0.0170** |"))
    stale = page.read_text()
    assert main(["docs", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "gates.json" in err and err.startswith("error: "), err
    # nothing half-written: a failed render writes no page
    assert page.read_text() == stale


def test_metrics_without_a_model_the_tables_show_name_it_in_one_line(tmp_path, capsys):
    root = copy_docs(tmp_path)
    path = root / "metrics/random_windows_detail.json"
    detail = json.loads(path.read_text())
    del detail["R"]["lstm"]
    path.write_text(json.dumps(detail))
    assert main(["docs", "--check", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert err == ("error: docs/random.md: table 'random-results' found no 'lstm' in metrics/ (a model or key the "
                   "default params write); run `dvc repro` at the committed params.yaml\n"), err


def test_the_readme_is_a_door_of_at_most_200_lines_with_the_two_commands_on_its_first_screen():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    first_screen = "\n".join(lines[:24])
    assert "make repro" in first_screen and "make test" in first_screen
    quick_start = "\n".join(lines[:40])  # the two commands, the activate line and where the results are
    for needed in ("source .venv/bin/activate", "dvc metrics show", "dvc plots show", "plots/", "rnnlab status"):
        assert needed in quick_start, needed
    assert not any("<exp" in line or "issue " in line.lower() for line in lines)  # commands run as written

"""`dvc plots show` / `dvc plots diff` write a page that renders with no network.

.dvc/config sets plots.html_template to .dvc/html/plots.html (made by tools/vendor_vega.py), which
inlines Vega, Vega-Lite and Vega-Embed instead of DVC's <script src="https://cdn.jsdelivr.net/...">.
Whether a browser really draws the plots offline: tools/check_plots_offline.sh (needs chromium).
"""

import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from configobj import ConfigObj
from dvc_render import VegaRenderer, render_html

from conftest import ROOT, run

DVC_DIR = ROOT / ".dvc"
VENDORED = {"vega": "5.20.2", "vega-lite": "5.2.0", "vega-embed": "6.18.2"}  # = dvc-render's CDN versions
GLOBALS = (").vega={}", ").vegaLite={}", ").vegaEmbed=")  # each UMD bundle defining its global
SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc\s*=", re.IGNORECASE)


def configured_template() -> Path:
    """The committed .dvc/config's plots.html_template, resolved as dvc does: against .dvc/."""
    config = ConfigObj(str(DVC_DIR / "config"))
    return DVC_DIR / config["plots"]["html_template"]


class Page(HTMLParser):
    """The page as a browser's parser splits it: script bodies apart from everything else."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._in = tag
            if tag == "script":
                self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts[-1] += data
        elif self._in is None:
            self.text.append(data)


def assert_self_contained(html: str, n_plots: int) -> None:
    assert not SCRIPT_SRC.search(html), "a <script src=...>: the page would need the network"
    assert "cdn.jsdelivr.net" not in html
    for placeholder in ("{plot_divs}", "{scripts}", "{refresh_tag}"):
        assert placeholder not in html
    page = Page(html)
    # the three libraries, then one script per plot: a "</script" inside the inlined code would split
    # a library into a script and loose text
    assert len(page.scripts) == len(VENDORED) + n_plots
    for (name, version), code, defines in zip(VENDORED.items(), page.scripts, GLOBALS):
        assert f"/*! {name}@{version} " in code
        assert "Redistribution and use in source and binary forms" in code  # its BSD-3-Clause licence
        assert defines in code
    loose = "".join(page.text)
    assert "function" not in loose and "=>" not in loose
    assert "rnnlab plots" in loose


def test_config_names_the_offline_template():
    template = configured_template()
    assert template == DVC_DIR / "html" / "plots.html"
    assert template.is_file()
    html = template.read_text(encoding="utf-8")
    assert html.count("{plot_divs}") == 1
    assert html.count("{refresh_tag}") == 1  # dvc's auto-refresh (dvclive) still works
    assert "{scripts}" not in html  # where dvc-render would put its CDN <script> tags
    for name, version in VENDORED.items():
        assert (DVC_DIR / "html" / "licenses" / f"{name}-{version}.LICENSE.txt").is_file()


def test_rendered_page_holds_no_remote_script(tmp_path):
    datapoints = [{"step": i, "loss": 1 / (i + 1), "rev": "workspace"} for i in range(5)]
    renderers = [
        VegaRenderer(datapoints, name, x="step", y="loss", template="linear", title=name)
        for name in ("loss_a", "loss_b")
    ]
    out = render_html(renderers, tmp_path / "index.html", html_template=configured_template(), refresh_seconds=5)
    html = Path(out).read_text(encoding="utf-8")
    assert_self_contained(html, n_plots=2)
    assert html.count("vegaEmbed('#loss_") == 2
    assert '<meta http-equiv="refresh" content="5">' in html


@pytest.mark.slow
def test_dvc_plots_show_and_diff_use_it(tmp_path):
    """The plain commands, in a repository holding this project's .dvc/config and template."""
    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q", "-b", "main"], repo)
    run(["dvc", "init", "-q"], repo)
    shutil.copy2(DVC_DIR / "config", repo / ".dvc" / "config")
    shutil.copytree(DVC_DIR / "html", repo / ".dvc" / "html")
    (repo / "loss.csv").write_text("step,loss\n0,1.0\n1,0.5\n2,0.25\n")
    (repo / "dvc.yaml").write_text("plots:\n  - loss.csv:\n      x: step\n      y: loss\n")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    run(["git", "add", "-A"], repo)
    run([*git, "commit", "-qm", "plots"], repo)
    (repo / "loss.csv").write_text("step,loss\n0,1.0\n1,0.4\n2,0.2\n")

    run(["dvc", "plots", "show", "-o", "show"], repo)
    run(["dvc", "plots", "diff", "HEAD", "-o", "diff"], repo)
    for out in ("show", "diff"):
        html = (repo / out / "index.html").read_text(encoding="utf-8")
        assert_self_contained(html, n_plots=1)
    diff = (repo / "diff" / "index.html").read_text(encoding="utf-8")
    assert '"HEAD"' in diff and '"workspace"' in diff
    assert not os.path.exists(repo / "dvc_plots")

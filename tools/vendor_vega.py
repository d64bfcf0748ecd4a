#!/usr/bin/env python3
"""Write .dvc/html/plots.html: DVC's plots page with Vega, Vega-Lite and Vega-Embed inlined.

`dvc plots show` / `dvc plots diff` (with plots.html_template in .dvc/config pointing at it) then
write a dvc_plots/index.html that renders with no network; DVC's default page loads the three
libraries from cdn.jsdelivr.net and stays blank offline.

    python tools/vendor_vega.py                 # npm pack the pinned tarballs, verify, write the template
    python tools/vendor_vega.py --check         # regenerate in memory; exit 1 if the committed file differs
    python tools/vendor_vega.py --tarballs DIR  # use (or keep) the .tgz files in DIR

Needs `npm` and the npm registry, only when the tarballs are not in --tarballs DIR. The versions are
those dvc-render 1.0.2 puts in its CDN <script> tags (dvc_render/vega.py), so plots render exactly as
with DVC's default page; each tarball is checked against the sha512 pinned below (npm's dist.integrity:
`npm view vega@5.20.2 dist.integrity`). The generated file is committed: a fresh clone needs no npm.
Page layout and CSS: tools/plots_page.html.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKELETON = ROOT / "tools" / "plots_page.html"
OUT = ROOT / ".dvc" / "html" / "plots.html"
LICENSES = ROOT / ".dvc" / "html" / "licenses"

# dvc-render fills the template by str.replace of these; the inlined code must contain none of them,
# and the page must not contain {scripts} (where dvc-render puts its CDN <script> tags).
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    build: str  # the browser bundle inside the tarball (package.json's "jsdelivr" field)
    integrity: str  # npm dist.integrity of the tarball

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball(self) -> str:
        return f"{self.name}-{self.version}.tgz"


# Load order matters: vega-lite needs the vega global, vega-embed both.
PACKAGES = (
    Package(
        "vega",
        "5.20.2",
        "build/vega.min.js",
        "sha512-qmH7aD9GGPpssVdxL1xgcdxTbQzyRUeRR16Os385ymvQhiwCYQNA6+eXUPAZDTVLfk0RXu6Jzj6kUE5jQ80EVw==",
    ),
    Package(
        "vega-lite",
        "5.2.0",
        "build/vega-lite.min.js",
        "sha512-Yxcg8MvYfxHcG6BbkaKT0oVCIMIcE19UvqIsEwBmyd/7h2nzW7oRnID81T8UrY7hpDrIr6wa2JADOT2dhGNErw==",
    ),
    Package(
        "vega-embed",
        "6.18.2",
        "build/vega-embed.min.js",
        "sha512-wcDyQPE4J5aiCDc3/suH5RQDvrKkjuLkhzUcbOLwEkNF8/+pp17tS0JghzEvAPNRg+5aG1/N2ydixq8Lk3dOlg==",
    ),
)


def fail(msg: str) -> None:
    sys.exit(f"error: {msg}")


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch(pkg: Package, folder: Path) -> bytes:
    """The package's tarball from `folder`, `npm pack`ed there first if missing; checked against the pin."""
    path = folder / pkg.tarball
    if not path.is_file():
        npm = shutil.which("npm")
        if npm is None:
            fail(f"{pkg.tarball} is not in {folder} and npm is not installed")
        print(f"npm pack {pkg.spec}", file=sys.stderr)
        cmd = [npm, "pack", pkg.spec, "--pack-destination", str(folder), "--silent"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    data = path.read_bytes()
    got = integrity(data)
    if got != pkg.integrity:
        fail(f"{path}: sha512 mismatch\n  pinned {pkg.integrity}\n  got    {got}")
    return data


def unpack(pkg: Package, data: bytes) -> tuple[str, str]:
    """(bundle, licence text) from the verified tarball bytes, after checking its package.json."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:

        def text(member: str) -> str:
            f = tar.extractfile(f"package/{member}")
            if f is None:
                fail(f"{pkg.tarball}: package/{member} is not a file")
            return f.read().decode("utf-8")

        meta = json.loads(text("package.json"))
        if (meta["name"], meta["version"]) != (pkg.name, pkg.version):
            fail(f"{pkg.tarball}: package.json says {meta['name']}@{meta['version']}")
        if meta.get("license") != "BSD-3-Clause":
            fail(f"{pkg.tarball}: licence is {meta.get('license')!r}, not BSD-3-Clause: review before vendoring")
        if meta.get("jsdelivr") != pkg.build:
            fail(f"{pkg.tarball}: the CDN serves {meta.get('jsdelivr')!r}, not {pkg.build}")
        return text(pkg.build), text("LICENSE")


# Inside <script>, the HTML parser ends the element at "</script" and treats "<!--" ... "<script"
# specially; \x3C is "<" in every JS context where these can legally occur (strings, regexes, templates).
UNSAFE = re.compile(r"<(?=/script|!--|script)", re.IGNORECASE)
SOURCE_MAP = re.compile(r"\n?//# sourceMappingURL=\S+\s*\Z")


def script_block(pkg: Package, js: str, licence: str) -> str:
    js = SOURCE_MAP.sub("", js)  # the .map is not shipped; the browser would only log a failed fetch
    js = UNSAFE.sub(r"\\x3C", js)
    banner = f"/*! {pkg.spec} | {pkg.build} from npm {pkg.tarball} ({pkg.integrity}) | BSD-3-Clause\n\n{licence.strip()}\n*/"
    if "*/" in licence:
        fail(f"{pkg.spec}: licence text contains */")
    for part in (js, banner):
        if UNSAFE.search(part):
            fail(f"{pkg.spec}: unescaped </script, <!-- or <script left")
        for placeholder in PLACEHOLDERS:
            if placeholder in part:
                fail(f"{pkg.spec}: contains dvc-render's placeholder {placeholder}")
    return f'<script type="text/javascript">\n{banner}\n{js}\n</script>'


def build(folder: Path) -> tuple[str, dict[str, str]]:
    blocks, licences = [], {}
    for pkg in PACKAGES:
        js, licence = unpack(pkg, fetch(pkg, folder))
        blocks.append(script_block(pkg, js, licence))
        licences[f"{pkg.name}-{pkg.version}.LICENSE.txt"] = licence
    skeleton = SKELETON.read_text(encoding="utf-8")
    for marker in ("<!-- VENDORED_SCRIPTS -->", "<!-- VENDORED_VERSIONS -->"):
        if skeleton.count(marker) != 1:
            fail(f"{SKELETON}: expected {marker} once")
    versions = " · ".join(f"{p.name} {p.version}" for p in PACKAGES)
    page = skeleton.replace("<!-- VENDORED_VERSIONS -->", versions).replace("<!-- VENDORED_SCRIPTS -->", "\n".join(blocks))
    for placeholder, count in (("{plot_divs}", 1), ("{refresh_tag}", 1), ("{scripts}", 0)):
        if page.count(placeholder) != count:
            fail(f"the page holds {placeholder} {page.count(placeholder)} times, not {count}")
    if re.search(r"""<script[^>]*\ssrc\s*=""", page, re.IGNORECASE):
        fail("the page has a <script src=...>")
    return page, licences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tarballs", type=Path, help="folder holding (or to keep) the npm tarballs; default: a temporary one")
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files differ from a fresh build")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.tarballs or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        page, licences = build(folder.resolve())

    files = {OUT: page, **{LICENSES / name: text for name, text in licences.items()}}
    if args.check:
        stale = [p for p, text in files.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
        for p in stale:
            print(f"stale: {p.relative_to(ROOT)}", file=sys.stderr)
        sys.exit(1 if stale else 0)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote {path.relative_to(ROOT)} ({len(text.encode()):,} bytes)")


if __name__ == "__main__":
    main()

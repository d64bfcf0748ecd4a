#!/usr/bin/env bash
# Does the DVC plots page render with no network? Not part of CI (CI has no browser).
#
#   tools/check_plots_offline.sh                 # dvc plots show
#   tools/check_plots_offline.sh diff HEAD~1     # dvc plots diff HEAD~1 (any `dvc plots` arguments)
#   OUT=/tmp/p HEIGHT=8000 tools/check_plots_offline.sh
#
# Writes the page twice into $OUT (default: a new /tmp/plots_offline.* folder): after/ with the
# configured template (.dvc/config plots.html_template: Vega inlined) and before/ with DVC's default
# one (Vega from cdn.jsdelivr.net), opens each in headless Chromium with every request sent to a dead
# proxy and every host unresolvable, and reports how many Vega plots drew (class="marks": a
# <canvas> or <svg> per plot) and the uncaught script errors. Screenshots: $OUT/{after,before}.png,
# 1400 px wide, $HEIGHT px tall (default 24000: the whole page; look at them).
# Then prints the size of `dvc plots <args> --json` (the data the page embeds) and names any plot drawn
# from a stage-level data file. Exit status 1 if the configured page drew fewer plots than it holds or
# threw an error.
# Needs chromium (Debian: apt-get install chromium) and the project's venv (make setup).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/.venv/bin:$PATH"

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [ -z "$CHROMIUM" ]; then
    echo "error: no chromium on PATH (Debian: apt-get install chromium), or set CHROMIUM=" >&2
    exit 2
fi
OUT=${OUT:-$(mktemp -d /tmp/plots_offline.XXXXXX)}
HEIGHT=${HEIGHT:-24000}
if [ $# -eq 0 ]; then set -- show; fi
mkdir -p "$OUT"

browse() {  # browse <page> <chromium output args...>
    local page=$1 profile
    shift
    profile=$(mktemp -d)
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --proxy-server=127.0.0.1:9 --host-resolver-rules='MAP * ~NOTFOUND' \
        --user-data-dir="$profile" --virtual-time-budget=10000 --window-size="1400,$HEIGHT" \
        --enable-logging=stderr --v=0 "$@" "file://$page"
    rm -rf "$profile"
}

python -c 'from dvc_render.html import PAGE_HTML; print(PAGE_HTML)' > "$OUT/dvc_default_template.html"
failed=0
for which in after before; do
    template=()
    if [ "$which" = before ]; then template=(--html-template "$OUT/dvc_default_template.html"); fi
    rm -rf "${OUT:?}/$which"
    dvc plots "$@" "${template[@]}" -o "$OUT/$which" > /dev/null
    page="$OUT/$which/index.html"
    browse "$page" --dump-dom > "$OUT/$which.dom.html" 2> "$OUT/$which.console.log"
    browse "$page" --screenshot="$OUT/$which.png" > /dev/null 2>&1
    plots=$({ grep -o "vegaEmbed('#" "$page" || true; } | wc -l)
    drawn=$({ grep -o 'class="marks"' "$OUT/$which.dom.html" || true; } | wc -l)
    errors=$(grep -c 'Uncaught' "$OUT/$which.console.log" || true)
    remote=$(grep -c -i -E '<script[^>]*src=["'"'"']?https?:' "$page" || true)
    label=$([ "$which" = after ] && echo "configured template" || echo "DVC's default template")
    echo "$which ($label): $drawn of $plots Vega plots drawn, $errors uncaught errors," \
        "$remote remote <script src>; screenshot $OUT/$which.png"
    if [ "$which" = after ] && { [ "$drawn" -ne "$plots" ] || [ "$errors" -ne 0 ] || [ "$remote" -ne 0 ]; }; then
        failed=1
        grep 'Uncaught' "$OUT/$which.console.log" | head -5 >&2 || true
    fi
done
# What the page carries: DVC copies every column of a plotted csv into each point (issue 14: keep the
# interactive plots on narrow csvs), and a csv declared under a stage's `plots:` is drawn once more on its own.
dvc plots "$@" --json > "$OUT/plots.json"
python - "$OUT/plots.json" <<'PY'
import json, sys
path = sys.argv[1]
data = json.load(open(path))["data"]
vega = {name: plots[0] for name, plots in data.items() if plots and plots[0]["type"] == "vega"}
points = sum(len(p["content"]["data"]["values"]) for p in vega.values() if "data" in p["content"])
size = len(open(path, "rb").read())
print(f"--json: {size / 1e6:.2f} MB, {len(vega)} Vega plots, {points} points; {path}")
drawn_twice = sorted(name for name in vega if name.endswith((".csv", ".tsv", ".json", ".yaml")))
if drawn_twice:
    print(f"note: {len(drawn_twice)} plots are stage-level data files drawn on their own: {', '.join(drawn_twice)}")
PY
if [ "$failed" -ne 0 ]; then
    echo "FAIL: the configured page does not render offline" >&2
    exit 1
fi
echo "OK: every Vega plot drew with the network off (before/ is expected to draw none)"

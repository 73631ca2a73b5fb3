"""Lighthouse (npm `lighthouse` 12, Node.js >= 20) on the five page kinds of the small atlas: home,
layer, unit, class and example. Accessibility must reach 95; all four category scores are written
to bench/out/lighthouse.json. Slow (about 25 s a page on 2 cores): `pytest -m slow`.

Lighthouse runs offline against a local http.server with Debian's Chromium (CHROME_PATH), desktop
form factor, no throttling. Install it once (kept out of git under .cache/):

    npm install --no-save --no-audit --no-fund --prefix .cache/lighthouse lighthouse@12.8.2
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

from generator.serve import CHROMIUM, serve_directory  # noqa: E402
from generator.synthetic import make_small_atlas  # noqa: E402

from generator.site import build_html, render_site  # noqa: E402

LIGHTHOUSE = ROOT / ".cache" / "lighthouse" / "node_modules" / ".bin" / "lighthouse"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
PAGES = {
    "home": "/",
    "layer": "/vgg16/block4_conv2/",
    "unit": "/vgg16/block4_conv2/17/",
    "class": "/vgg16/classes/292-tiger/",
    "example": "/examples/chelsea/",
}
MIN_ACCESSIBILITY = 0.95


def lighthouse_scores(url, report_path):
    """{category: score 0..1} and the failing audits [(category, audit id)] of one Lighthouse run."""
    subprocess.run(
        [str(LIGHTHOUSE), url, "--quiet", "--output=json", f"--output-path={report_path}",
         "--chrome-flags=--headless=new --no-sandbox --disable-gpu", "--form-factor=desktop",
         "--screenEmulation.disabled", "--throttling-method=provided",
         f"--only-categories={','.join(CATEGORIES)}"],
        check=True, env=dict(os.environ, CHROME_PATH=CHROMIUM), timeout=300,
    )
    report = json.loads(Path(report_path).read_text())
    scores = {name: report["categories"][name]["score"] for name in CATEGORIES}
    failing = [
        (name, ref["id"]) for name in CATEGORIES for ref in report["categories"][name]["auditRefs"]
        if ref["weight"] > 0 and (report["audits"][ref["id"]]["score"] or 1) < 1
    ]
    return scores, failing


@pytest.mark.slow
def test_lighthouse_accessibility_on_every_page_kind(tmp_path):
    if not LIGHTHOUSE.is_file():
        pytest.fail(f"Lighthouse is not installed at {LIGHTHOUSE}; see this module's docstring")
    site_src, site_dir = tmp_path / "site_src", tmp_path / "site"
    make_small_atlas(site_src)
    render_site(site_src)
    build_html(site_src, site_dir)
    results = {}
    with serve_directory(site_dir) as base_url:
        for kind, path in PAGES.items():
            scores, failing = lighthouse_scores(base_url + path, tmp_path / f"{kind}.json")
            results[kind] = {"path": path, "scores": scores, "failing_audits": failing}
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "lighthouse.json").write_text(json.dumps(results, indent=1) + "\n")
    low = {kind: result for kind, result in results.items() if result["scores"]["accessibility"] < MIN_ACCESSIBILITY}
    assert low == {}

"""Benchmark of the website at full atlas size: render + `mkdocs build`, sizes, first view, search.

    python bench/bench_site.py                      # synthetic full atlas in a temp dir (~1 min to make)
    python bench/bench_site.py --site-src DIR       # an existing site_src (e.g. a kept synthetic one)

Steps: make the synthetic atlas (4,224 filters + 1,000 classes, small images; not timed against
the goal), render the pages, build the HTML with `mkdocs build --strict`, then serve the site on
127.0.0.1 and open it in headless Chromium to measure the first view of a layer page and to check
that the documented searches find their page first. Goals (docs/SITE.md): render + build <= 90 s,
search index <= 3 MB, a layer page <= 2 MB transferred on first view. Writes bench/out/bench_site.json;
exits 1 when a goal is missed. The layer page is measured twice: from a plain http.server (no
compression, the goal's measure) and from one that gzips text like GitHub Pages.
"""

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator.serve import launch_chromium, serve_directory  # noqa: E402
from generator.site import build_html, render_site  # noqa: E402
from generator.synthetic import make_synthetic_atlas  # noqa: E402

GOAL_SECONDS = 90.0
GOAL_SEARCH_INDEX_BYTES = 3_000_000
GOAL_LAYER_PAGE_BYTES = 2_000_000
SEARCHES = {  # documented queries -> the page that must come first
    "ouzel": "/vgg16/classes/20-water-ouzel/",
    "tiger": "/vgg16/classes/292-tiger/",
    "n01601694": "/vgg16/classes/20-water-ouzel/",
    "block4_conv2 17": "/vgg16/block4_conv2/17/",
    "block5_conv3 1": "/vgg16/block5_conv3/1/",
    "block4_conv2 #511": "/vgg16/block4_conv2/511/",
}


def timed(function, *args):
    """(result, wall seconds, CPU seconds of this process) of function(*args)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def site_sizes(site_dir):
    """Bytes of the built site: total, HTML, images, and the search index raw and gzipped."""
    sizes = {"total": 0, "html": 0, "images": 0, "files": 0}
    for path in Path(site_dir).rglob("*"):
        if path.is_file():
            size = path.stat().st_size
            sizes["total"] += size
            sizes["files"] += 1
            if path.suffix == ".html":
                sizes["html"] += size
            elif path.suffix in (".webp", ".png"):
                sizes["images"] += size
    for name, path in (("search_index", "search/search_index.json"), ("compare_json", "vgg16/compare.json")):
        data = (Path(site_dir) / path).read_bytes()
        sizes[f"{name}_raw"] = len(data)
        sizes[f"{name}_gzip"] = len(gzip.compress(data, compresslevel=6))
    return sizes


def first_view(browser, url, viewport=(1280, 900)):
    """Bytes and requests of loading `url` without scrolling, after lazy images settled."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.goto(url, wait_until="load")
    page.wait_for_timeout(1500)
    result = page.evaluate(
        """() => {
            const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
            const images = [...document.querySelectorAll("article img")];
            return {
                bytes: entries.reduce((sum, e) => sum + e.transferSize, 0),
                requests: entries.length,
                search_index_loaded: entries.some(e => e.name.endsWith("/search/search_index.json")),
                images_loaded: images.filter(i => i.complete && i.naturalWidth > 0).length,
                images_total: images.length,
            };
        }"""
    )
    context.close()
    return result


def check_searches(browser, base_url, searches=SEARCHES):
    """[{query, expected, first, seconds}] of each documented search, through Material's search UI."""
    results = []
    context = browser.new_context()
    page = context.new_page()
    for query, expected in searches.items():
        start = time.perf_counter()
        page.goto(f"{base_url}/?q={quote(query)}")
        page.wait_for_selector(".md-search-result__list > li a", timeout=60_000)
        first = urlsplit(page.eval_on_selector(".md-search-result__list > li a", "a => a.href")).path
        results.append({"query": query, "expected": expected, "first": first,
                        "seconds": round(time.perf_counter() - start, 2)})
    context.close()
    return results


def run(site_src=None, layer="block5_conv1", work_dir=None):
    """Run the whole benchmark; returns the report (a dict)."""
    from playwright.sync_api import sync_playwright

    report = {"load_average": os.getloadavg()[0], "cpus": os.cpu_count()}
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="bench_site_"))
    if site_src is None:
        site_src = work_dir / "site_src"
        _, wall, cpu = timed(make_synthetic_atlas, site_src)
        report["make_synthetic"] = {"wall": round(wall, 1), "cpu": round(cpu, 1)}
    stats, wall, cpu = timed(render_site, Path(site_src))
    report["render"] = {"wall": round(wall, 1), "cpu": round(cpu, 1), "pages": stats.pages, "written": stats.written,
                        "filters": stats.filters, "classes_with_images": stats.classes_with_images}
    site_dir = work_dir / "site"
    _, wall, cpu = timed(build_html, Path(site_src), site_dir)
    report["build"] = {"wall": round(wall, 1), "cpu": round(cpu, 1)}
    report["render_build_wall"] = round(report["render"]["wall"] + report["build"]["wall"], 1)
    report["render_build_cpu"] = round(report["render"]["cpu"] + report["build"]["cpu"], 1)
    report["sizes"] = site_sizes(site_dir)
    with serve_directory(site_dir) as raw_url, serve_directory(site_dir, compress=True) as gzip_url, \
            sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        report["layer_page"] = dict(first_view(browser, f"{raw_url}/vgg16/{layer}/"), layer=layer)
        report["layer_page_gzip"] = first_view(browser, f"{gzip_url}/vgg16/{layer}/")
        report["home_page"] = first_view(browser, f"{raw_url}/")
        report["home_page_gzip"] = first_view(browser, f"{gzip_url}/")
        report["searches"] = check_searches(browser, gzip_url)
        browser.close()
    report["goals"] = {
        "render_build_seconds": report["render_build_wall"] <= GOAL_SECONDS,
        "search_index_bytes": report["sizes"]["search_index_raw"] <= GOAL_SEARCH_INDEX_BYTES,
        "layer_page_bytes": report["layer_page"]["bytes"] <= GOAL_LAYER_PAGE_BYTES,
        "searches_first": all(s["first"] == s["expected"] for s in report["searches"]),
    }
    report["work_dir"] = str(work_dir)
    return report


def _print(report):
    mb = 1e6
    sizes = report["sizes"]
    print(f"load average {report['load_average']:.1f} on {report['cpus']} CPUs")
    if "make_synthetic" in report:
        print(f"make synthetic atlas  {report['make_synthetic']['wall']:6.1f} s wall")
    print(f"render                {report['render']['wall']:6.1f} s wall {report['render']['cpu']:6.1f} s CPU "
          f"({report['render']['pages']} pages)")
    print(f"mkdocs build          {report['build']['wall']:6.1f} s wall {report['build']['cpu']:6.1f} s CPU")
    print(f"render + build        {report['render_build_wall']:6.1f} s wall {report['render_build_cpu']:6.1f} s CPU "
          f"(goal <= {GOAL_SECONDS:.0f} s)")
    print(f"site                  {sizes['total'] / mb:6.1f} MB in {sizes['files']} files "
          f"(HTML {sizes['html'] / mb:.1f} MB, images {sizes['images'] / mb:.1f} MB)")
    print(f"search index          {sizes['search_index_raw'] / mb:6.2f} MB raw, "
          f"{sizes['search_index_gzip'] / mb:.2f} MB gzip (goal <= 3 MB)")
    page = report["layer_page"]
    print(f"{page['layer']} first view {page['bytes'] / mb:6.2f} MB uncompressed, "
          f"{report['layer_page_gzip']['bytes'] / mb:.2f} MB with gzip, in {page['requests']} requests; "
          f"{page['images_loaded']} of {page['images_total']} thumbnails loaded (goal <= 2 MB)")
    home = report["home_page"]
    print(f"home page first view  {home['bytes'] / mb:6.2f} MB uncompressed, {report['home_page_gzip']['bytes'] / mb:.2f} MB "
          f"with gzip, in {home['requests']} requests; search index loaded: {home['search_index_loaded']}")
    print(f"compare.json          {sizes['compare_json_raw'] / mb:6.2f} MB raw, {sizes['compare_json_gzip'] / mb:.2f} MB gzip "
          "(loaded by the compare page only)")
    for search in report["searches"]:
        mark = "ok " if search["first"] == search["expected"] else "BAD"
        print(f"search {mark} {search['query']!r:20} -> {search['first']} ({search['seconds']} s)")
    print("goals: " + ", ".join(f"{name} {'met' if met else 'MISSED'}" for name, met in report["goals"].items()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-src", type=Path, help="existing site_src to render (default: a synthetic full atlas)")
    parser.add_argument("--layer", default="block5_conv1", help="layer page to measure (default block5_conv1)")
    parser.add_argument("--work-dir", type=Path, help="where to put the synthetic site_src and site/ (default: a temp dir)")
    args = parser.parse_args(argv)
    report = run(args.site_src, args.layer, args.work_dir)
    _print(report)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_site.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0 if all(report["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Site rendering (generator/site.py): known-answer pages, escaping, pruning, `mkdocs build --strict`,
and a crawl of the built files for broken internal links and images."""

import csv
import html
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

from generator.architecture import CONV_LAYERS, TOTAL_FILTERS  # noqa: E402
from generator.errors import UserError  # noqa: E402
from generator.synthetic import make_small_atlas  # noqa: E402
from generator.site import (  # noqa: E402
    CSV_COLUMNS, build_html, markdown_text, page_root, relative_page, relative_url, render_site,
)

# top pages (home, methods, credits, downloads, compare), layers, every filter (drawn or not),
# class index, classes, examples index
ALWAYS_PAGES = 5 + len(CONV_LAYERS) + TOTAL_FILTERS + 1 + 1000 + 1


def front_matter(path):
    """The YAML front matter of a rendered page, parsed (its strings are HTML-escaped)."""
    text = Path(path).read_text(encoding="utf-8")
    assert text.startswith("---\n"), path
    return yaml.safe_load(text.split("---\n")[1])


@pytest.fixture(scope="module")
def small_atlas(tmp_path_factory):
    """(site_src, stats) of the tests' small synthetic atlas, rendered once."""
    site_src = tmp_path_factory.mktemp("small") / "site_src"
    make_small_atlas(site_src)
    (site_src / "examples/chelsea/maps.npz").write_bytes(b"raw saliency arrays")  # a real run writes these
    return site_src, render_site(site_src)


@pytest.fixture(scope="module")
def built_site(small_atlas, tmp_path_factory):
    """The small atlas built by `mkdocs build --strict`."""
    site_dir = tmp_path_factory.mktemp("built") / "site"
    build_html(small_atlas[0], site_dir)
    return site_dir


def test_markdown_text_escapes_markdown_and_html():
    assert markdown_text("jack-o'-lantern") == "jack\\-o&#39;\\-lantern"
    assert markdown_text('"tabby" & <b>') == "&#34;tabby&#34; &amp; &lt;b&gt;"
    assert markdown_text("block4_conv2 #17 *x* [y](z) `c` a|b") == (
        "block4\\_conv2 \\#17 \\*x\\* \\[y\\]\\(z\\) \\`c\\` a\\|b"
    )


def test_relative_paths_follow_directory_urls():
    assert page_root("index.md") == ""
    assert page_root("methods.md") == "../"
    assert page_root("vgg16/block4_conv2/17/index.md") == "../../../"
    assert relative_url("vgg16/block4_conv2/17/index.md", "examples/chelsea/") == "../../../examples/chelsea/"
    assert relative_url("examples/chelsea/index.md", "examples/chelsea/units/a.webp") == "units/a.webp"
    assert relative_page("examples/chelsea/index.md", "vgg16/classes/20-water-ouzel/index.md") == (
        "../../vgg16/classes/20-water-ouzel/index.md"
    )


def test_empty_site_src_renders_architecture_and_all_class_pages(tmp_path):
    stats = render_site(tmp_path)
    assert (stats.pages, stats.filters, stats.classes_with_images, stats.examples) == (ALWAYS_PAGES, 0, 0, 0)
    class_pages = sorted((tmp_path / "vgg16" / "classes").glob("*/index.md"))
    assert len(class_pages) == 1000
    ouzel = (tmp_path / "vgg16/classes/20-water-ouzel/index.md").read_text()
    assert "n01601694" in ouzel and "dipper" in ouzel and "No class image has been computed yet" in ouzel
    assert "0 of 64 filters are drawn" in (tmp_path / "vgg16/block1_conv1/index.md").read_text()
    assert "python build.py --layers block5_conv3 --filters 511" in (tmp_path / "vgg16/block5_conv3/511/index.md").read_text()
    home = (tmp_path / "index.md").read_text()
    assert "Nothing is computed yet" in home
    for layer in CONV_LAYERS:
        assert f"[{markdown_text(layer.name)}](vgg16/{layer.name}/index.md) | {layer.block} | {layer.filters:,} | " \
               f"{layer.receptive_field}&times;{layer.receptive_field} px" in home
    assert (tmp_path / "vgg16/units.csv").read_text() == ",".join(CSV_COLUMNS) + "\n"
    assert "Class images need the full ImageNet weights" in (tmp_path / "vgg16/classes/index.md").read_text()


def test_render_counts_and_csv(small_atlas):
    site_src, stats = small_atlas
    filters = 3 * len(CONV_LAYERS) + 4
    assert (stats.filters, stats.classes_with_images, stats.examples) == (filters, 7, 2)
    assert stats.pages == ALWAYS_PAGES + 2
    rows = list(csv.DictReader((site_src / "vgg16/units.csv").open(encoding="utf-8")))
    assert len(rows) == filters + 7
    assert rows[0]["layer"] == "block1_conv1" and rows[0]["index"] == "0" and rows[0]["image"] == "vgg16/block1_conv1/0/image.webp"
    assert rows[-1]["label"] == "potter's wheel" and rows[-1]["wnid"] == "n03992509"


def test_unit_page_known_answers(small_atlas):
    site_src, _ = small_atlas
    unit_dir = site_src / "vgg16/block4_conv2/17"
    page = (unit_dir / "index.md").read_text()
    assert front_matter(unit_dir / "index.md")["title"] == "block4_conv2 #17"
    assert front_matter(unit_dir / "index.md")["description"] == "Feature visualization of filter 17 of VGG16 layer block4_conv2"
    assert "Filter 17 of 512 in layer [block4\\_conv2](../index.md)" in page
    assert '<img src="image.webp" width="32" height="32"' in page
    assert 'href="../16/" rel="prev"' in page and 'href="../18/" rel="next"' in page
    assert "kernel.png" not in page and "<td>8017</td>" in page  # the seed
    assert '<a href="unit.json">' in page
    for source in ("../../../examples/chelsea/units/block4_conv2-17-activation.webp",
                   "../../../examples/coffee/units/block4_conv2-17-attribution.webp"):
        assert f'src="{source}"' in page and (unit_dir / source).is_file()
    first = (site_src / "vgg16/block1_conv1/0/index.md").read_text()
    assert 'src="kernel.png"' in first and 'src="negative.webp"' in first and "rel=\"prev\"" not in first


def test_layer_grid_is_lazy_sized_and_resolves(small_atlas):
    site_src, _ = small_atlas
    layer_dir = site_src / "vgg16/block4_conv2"
    page = (layer_dir / "index.md").read_text()
    cells = [line for line in page.splitlines() if line.startswith('<a class="atlas-cell')]
    assert len(cells) == 512
    drawn = [cell for cell in cells if "<img" in cell]
    assert len(drawn) == 7
    for cell, index in zip(drawn, (0, 1, 2, 17, 170, 171, 175)):
        assert f'href="{index}/"' in cell and f'src="{index}/thumb.webp"' in cell
        assert 'loading="lazy"' in cell and 'width="96" height="96"' in cell
        assert f'alt="Filter {index} of block4_conv2"' in cell
        assert (layer_dir / str(index) / "thumb.webp").is_file()


def test_class_pages_with_and_without_image(small_atlas):
    site_src, _ = small_atlas
    tiger = site_src / "vgg16/classes/292-tiger/index.md"
    assert front_matter(tiger)["title"] == "tiger"
    assert 'src="image.webp"' in tiger.read_text() and "Panthera tigris" in tiger.read_text()
    jay = (site_src / "vgg16/classes/17-jay/index.md").read_text()
    assert "No class image has been computed yet" in jay and "image.webp" not in jay
    assert front_matter(site_src / "vgg16/classes/607-jack-o-lantern/index.md")["title"] == "jack-o&#39;-lantern"
    index = (site_src / "vgg16/classes/index.md").read_text()
    assert '<li><a href="292-tiger/"><img src="292-tiger/thumb.webp"' in index
    assert '<li><a href="607-jack-o-lantern/"><img src="607-jack-o-lantern/thumb.webp" loading="lazy" decoding="async" ' \
        'width="32" height="32" alt="">jack-o&#39;-lantern</a> <span class="atlas-wnid">n03590841</span></li>' in index
    assert '<li><a href="17-jay/">jay</a> <span class="atlas-wnid">n01580077</span></li>' in index


def test_example_page_escapes_title_and_links_predictions(small_atlas):
    site_src, _ = small_atlas
    path = site_src / "examples/chelsea/index.md"
    assert front_matter(path)["title"] == "Chelsea the cat, &#34;tabby&#34; &amp; friends"
    page = path.read_text()
    assert "# Chelsea the cat, &#34;tabby&#34; &amp; friends" in page
    assert "| 1 | [tabby](../../vgg16/classes/281-tabby/index.md) | 50.0 % |" in page
    assert '<img src="class-607-gradcam.webp" loading="lazy" width="224" height="224" alt="Grad-CAM saliency map ' \
        "for class 607 jack-o&#39;-lantern on Chelsea the cat, &#34;tabby&#34; &amp; friends\">" in page
    assert '<a href="../../vgg16/block4_conv2/17/">block4_conv2 #17</a><br>activation 10, rank 1' in page
    assert (path.parent / "units/block4_conv2-17-attribution.webp").is_file()
    assert "| Unit method | guided\\_backprop |" in page


def test_rerender_is_idempotent_and_prunes_stale_pages(tmp_path):
    site_src = tmp_path / "site_src"
    make_small_atlas(site_src)
    first = render_site(site_src)
    second = render_site(site_src)
    assert second.written == 0 and second.removed == 0 and second.pages == first.pages
    (site_src / "vgg16/block4_conv2/170/unit.json").unlink()  # record gone, images stay
    (site_src / "examples/coffee/example.json").unlink()
    third = render_site(site_src)
    assert third.removed == 1 and third.pages == first.pages - 1
    assert "Not drawn yet" in (site_src / "vgg16/block4_conv2/170/index.md").read_text()  # every filter has a page
    assert (site_src / "vgg16/block4_conv2/170/thumb.webp").is_file()
    assert not (site_src / "examples/coffee/index.md").exists()
    unit_page = (site_src / "vgg16/block4_conv2/17/index.md").read_text()
    assert 'href="../18/" rel="next"' in unit_page and "examples/coffee" not in unit_page


def test_pruning_removes_directories_left_empty(tmp_path):
    make_small_atlas(tmp_path)
    render_site(tmp_path)
    coffee = tmp_path / "examples/coffee"
    for path in sorted(coffee.rglob("*"), reverse=True):
        if path.name != "index.md":
            path.unlink() if path.is_file() else path.rmdir()
    assert render_site(tmp_path).removed == 1 and not coffee.exists() and (tmp_path / "examples/chelsea").is_dir()


def test_bad_inputs_raise_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="is not a directory"):
        render_site(tmp_path / "missing")
    make_small_atlas(tmp_path)
    record_path = tmp_path / "vgg16/block1_conv1/2/unit.json"
    record = json.loads(record_path.read_text())
    record["index"] = 64  # block1_conv1 has 64 filters: 0..63
    record_path.write_text(json.dumps(record))
    with pytest.raises(UserError, match=r"names no VGG16 unit \(block1_conv1 #64\)") as error:
        render_site(tmp_path)
    assert "\n" not in str(error.value)
    record.update(index=2, url="vgg16/block1_conv1/2/")
    versions = record["provenance"].pop("versions")
    record_path.write_text(json.dumps(record))
    with pytest.raises(UserError, match=r"vgg16/block1_conv1/2/unit.json: provenance: 'versions' is a required"):
        render_site(tmp_path)
    record["provenance"]["versions"] = versions
    record.update(url="vgg16/block1_conv1/02/")
    record_path.write_text(json.dumps(record))
    with pytest.raises(UserError, match="url 'vgg16/block1_conv1/02/' is not the contract's 'vgg16/block1_conv1/2/'"):
        render_site(tmp_path)


def test_empty_site_src_builds_strictly(tmp_path):
    site_src, site_dir = tmp_path / "site_src", tmp_path / "site"
    site_src.mkdir()
    render_site(site_src)
    build_html(site_src, site_dir)
    assert (site_dir / "vgg16/classes/999-toilet-tissue/index.html").is_file()
    assert "0 of 512 filters are drawn" in (site_dir / "vgg16/block5_conv3/index.html").read_text()
    assert (site_dir / "vgg16/block5_conv3/511/index.html").is_file()


def test_build_reports_the_first_warning_in_one_line(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/index.md").write_text("# Home\n\n[broken](nowhere.md)\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text("site_name: t\ndocs_dir: docs\n")
    with pytest.raises(UserError, match="1 warnings in strict mode.*'nowhere.md'") as error:
        build_html(tmp_path / "docs", tmp_path / "site", config)
    assert "\n" not in str(error.value)


LINK = re.compile(r'(?:href|src)="([^"]*)"')


def broken_internal_links(site_dir):
    """[(page, link)] of internal links and images in the built site that resolve to no file.

    Root-absolute links ("/assets/...", used by MkDocs' 404 page) resolve against the site root.
    """
    site_dir = site_dir.resolve()
    broken = []
    for page in sorted(site_dir.rglob("*.html")):
        for link in LINK.findall(page.read_text(encoding="utf-8")):
            parts = urlsplit(html.unescape(link))
            if parts.scheme or parts.netloc or not parts.path:
                continue
            base = site_dir if parts.path.startswith("/") else page.parent
            target = (base / unquote(parts.path).lstrip("/")).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or site_dir not in target.parents:
                broken.append((page.relative_to(site_dir).as_posix(), link))
    return broken


def test_built_site_has_no_broken_internal_links_or_images(built_site):
    pages = list(built_site.rglob("*.html"))
    assert len(pages) > 1000
    assert broken_internal_links(built_site) == []


def test_built_pages_escape_labels_and_need_no_internet(built_site):
    chelsea = (built_site / "examples/chelsea/index.html").read_text()
    escaped = "Chelsea the cat, &#34;tabby&#34; &amp; friends"
    assert f"<title>{escaped} - VGG16 Atlas</title>" in chelsea
    assert f'<meta name="description" content="VGG16 predictions and saliency maps on the photo {escaped}">' in chelsea
    assert f'<h1 id="chelsea-the-cat-tabby-friends">{escaped}<a class="headerlink"' in chelsea
    assert '"tabby"' not in chelsea and "& friends" not in chelsea
    lantern = (built_site / "vgg16/classes/607-jack-o-lantern/index.html").read_text()
    assert "<title>jack-o&#39;-lantern - VGG16 Atlas</title>" in lantern
    assert '<h1 id="jack-o-lantern">jack-o&#39;-lantern<a class="headerlink"' in lantern
    home = (built_site / "index.html").read_text()
    assert "fonts.googleapis" not in home and "fonts.gstatic" not in home
    assert home.count('href="vgg16/block1_conv1/0/"') == 1  # the home mosaic; unit pages stay out of the navigation
    assert 'href="vgg16/block1_conv1/"' in home


def test_search_index_holds_only_searchable_text(built_site):
    docs = json.loads((built_site / "search/search_index.json").read_text())["docs"]
    # filter pages are resolved by the search worker ("block4_conv2 17"), not indexed
    assert [doc["location"] for doc in docs if doc["location"].startswith("vgg16/block")] == [
        f"vgg16/{layer.name}/" for layer in CONV_LAYERS
    ]
    ouzel = next(doc for doc in docs if doc["location"] == "vgg16/classes/20-water-ouzel/")
    assert "n01601694" in ouzel["text"] and "dipper" in ouzel["text"] and "chickadee" not in ouzel["text"]


@pytest.mark.slow
def test_full_atlas_meets_the_site_goals(tmp_path):
    """The whole benchmark (bench/bench_site.py) on a synthetic full atlas: time, sizes, search."""
    import runpy

    report = runpy.run_path(str(ROOT / "bench" / "bench_site.py"))["run"](work_dir=tmp_path)
    assert report["render"]["pages"] == ALWAYS_PAGES
    assert [s["first"] for s in report["searches"]] == [s["expected"] for s in report["searches"]]
    assert report["goals"] == {
        "render_build_seconds": True, "search_index_bytes": True, "layer_page_bytes": True, "searches_first": True,
    }


def test_home_and_class_index_state_the_weights(small_atlas):
    site_src, _ = small_atlas
    home = (site_src / "index.md").read_text()
    assert f"43 of 4,224 filters and 7 of 1,000 class images are computed, with the embedded weights (SHA-256 `{'0' * 64}`). " \
           "Last update: 2026\\-11\\-28T01:02:03Z." in home
    assert "(this atlas: embedded weights, with the classifier head)" in (site_src / "vgg16/classes/index.md").read_text()


def test_class_page_links_examples_that_predict_it_in_their_top_5(small_atlas):
    site_src, _ = small_atlas
    tabby = (site_src / "vgg16/classes/281-tabby/index.md").read_text()
    assert '<li><a href="../../../examples/chelsea/">Chelsea the cat, &#34;tabby&#34; &amp; friends</a>: ' \
        "rank 1 of the top 5, probability 50.0&nbsp;%</li>" in tabby
    assert "Example photos predicted as" not in (site_src / "vgg16/classes/17-jay/index.md").read_text()


def test_built_site_leaves_out_raw_saliency_arrays(built_site):
    assert list(built_site.rglob("*.npz")) == []
    assert (built_site / "examples/chelsea/photo.webp").is_file()


def test_downloads_page_front_matter_is_not_printed(built_site):
    downloads = (built_site / "downloads/index.html").read_text()
    assert "description:" not in downloads and "title: Downloads" not in downloads
    assert '<meta name="description" content="The atlas data: the manifest, a CSV of all units' in downloads


def test_search_dialog_has_an_accessible_name(built_site):
    home = (built_site / "index.html").read_text()
    assert '<div class="md-search" data-md-component="search" role="dialog" aria-label="Search">' in home


def test_compare_page_and_its_data_are_built(built_site):
    assert (built_site / "vgg16/compare.json").is_file()
    compare = (built_site / "compare/index.html").read_text()
    assert 'data-units="../vgg16/compare.json"' in compare and "assets/atlas-compare.js" in compare
    assert "assets/atlas-compare.js" not in (built_site / "index.html").read_text()


def test_breadcrumbs_are_drawn_above_the_content(built_site):
    chelsea = (built_site / "examples/chelsea/index.html").read_text()
    assert '<nav class="atlas-breadcrumbs" aria-label="Breadcrumb"><ol>\n    <li><a href="../..">Home</a></li>\n' \
        '    <li><a href="../">Examples</a></li>\n' \
        '    <li><span aria-current="page">Chelsea the cat, &#34;tabby&#34; &amp; friends</span></li>' in chelsea
    assert chelsea.index("atlas-breadcrumbs") < chelsea.index("<h1")


def test_pages_the_atlas_did_not_write_are_never_deleted_or_overwritten(tmp_path):
    """Issue 8 item 2: --render-only removed hand-written pages and overwrote index.md."""
    site_src = tmp_path / "site_src"
    make_small_atlas(site_src)
    mine = {"examples/tutorial/index.md": "# My tutorial\n", "vgg16/notes/index.md": "# Notes\n",
            "notes.md": "# Mine\n"}
    for relative, text in mine.items():
        (site_src / relative).parent.mkdir(parents=True, exist_ok=True)
        (site_src / relative).write_text(text)
    render_site(site_src)
    render_site(site_src)
    assert all((site_src / relative).read_text() == text for relative, text in mine.items())
    home = (site_src / "index.md").read_text()
    (site_src / "index.md").write_text("# My own home page\n")
    with pytest.raises(UserError, match=r"index.md is in the way: the atlas did not write it") as error:
        render_site(site_src)
    assert "\n" not in str(error.value)
    assert (site_src / "index.md").read_text() == "# My own home page\n"
    (site_src / "index.md").write_text(home)  # a page it wrote comes back under its care
    assert render_site(site_src).written == 0

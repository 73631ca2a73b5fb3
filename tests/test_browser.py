"""The built site in a real browser: Debian's Chromium driven by Playwright, offline.

A small synthetic atlas is rendered, built with `mkdocs build --strict`, and served on 127.0.0.1.
Every page load must be free of console errors, failed requests and requests leaving 127.0.0.1.
"""

from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]

from generator.serve import launch_chromium, serve_directory  # noqa: E402
from generator.site import build_html, render_site  # noqa: E402
from generator.synthetic import make_small_atlas  # noqa: E402


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    """URL of the small atlas, built and served by http.server in a thread."""
    site_src = tmp_path_factory.mktemp("browser") / "site_src"
    make_small_atlas(site_src)
    render_site(site_src)
    site_dir = site_src.parent / "site"
    build_html(site_src, site_dir)
    with serve_directory(site_dir) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium (bench_site.CHROMIUM_ARGS: headless, no sandbox, no background traffic)."""
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, base_url):
    """A fresh page that may only talk to the local server; fails the test on any error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    problems = []
    local = urlsplit(base_url).netloc

    def route(request_route):
        if urlsplit(request_route.request.url).netloc == local:
            request_route.continue_()
        else:
            problems.append(f"request left the site: {request_route.request.url}")
            request_route.abort()

    tab.route("**/*", route)
    tab.on("console", lambda message: message.type == "error" and problems.append(f"console: {message.text}"))
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on("requestfailed", lambda request: problems.append(f"failed: {request.url} {request.failure}"))
    tab.on("response", lambda response: response.status >= 400 and problems.append(f"HTTP {response.status}: {response.url}"))
    yield tab
    context.close()
    assert problems == []


def scroll_through(tab):
    """Bring every image into view so lazy images load, then wait until all are done."""
    tab.evaluate(
        """async () => {
            for (const image of document.images) {
                image.scrollIntoView({block: "center"});
                await new Promise(resolve => requestAnimationFrame(resolve));
            }
        }"""
    )
    tab.wait_for_function("[...document.images].every(image => image.complete)")


def heading(tab):
    """Text of the page's h1 without its permalink."""
    return tab.eval_on_selector(
        "article h1", "h => [...h.childNodes].filter(n => !n.classList?.contains('headerlink')).map(n => n.textContent).join('')"
    )


def broken_images(tab):
    return tab.eval_on_selector_all("img", "images => images.filter(i => !(i.naturalWidth > 0)).map(i => i.src)")


def first_result_path(tab):
    tab.wait_for_selector(".md-search-result__list > li a", timeout=15_000)
    return urlsplit(tab.eval_on_selector(".md-search-result__list > li a", "link => link.href")).path


def test_home_page_renders_with_architecture_and_dark_mode(page, base_url):
    page.goto(base_url + "/")
    assert heading(page) == "VGG16 Atlas"
    rows = page.eval_on_selector_all(
        "article table tbody tr", "rows => rows.map(r => [r.cells[0].innerText, r.querySelector('a').getAttribute('href')])"
    )
    assert len(rows) == 14
    assert rows[0] == ["block1_conv1", "vgg16/block1_conv1/"]
    assert rows[-1] == ["predictions", "vgg16/classes/"]
    assert page.get_attribute("body", "data-md-color-scheme") == "default"
    page.click("form[data-md-component=palette] label:not([hidden])")
    assert page.get_attribute("body", "data-md-color-scheme") == "slate"


@pytest.mark.parametrize("query, expected", [
    ("ouzel", "/vgg16/classes/20-water-ouzel/"),
    ("tiger", "/vgg16/classes/292-tiger/"),
    ("n01601694", "/vgg16/classes/20-water-ouzel/"),
    ("block4_conv2 17", "/vgg16/block4_conv2/17/"),
    ("potter's wheel", "/vgg16/classes/739-potter-s-wheel/"),
])
def test_search_returns_the_expected_page_first(page, base_url, query, expected):
    page.goto(f"{base_url}/?q={quote(query)}")  # Material's search deep link fills the search box
    assert page.input_value("input.md-search__input") == query
    assert first_result_path(page) == expected


def test_typing_a_class_name_and_opening_the_first_result(page, base_url):
    page.goto(base_url + "/methods/")
    page.click("input.md-search__input")
    page.keyboard.type("tiger", delay=20)
    page.wait_for_function(
        "document.querySelector('.md-search-result__list > li a')?.href.endsWith('/vgg16/classes/292-tiger/')",
        timeout=15_000,
    )
    titles = page.eval_on_selector_all(".md-search-result__list > li h1", "hs => hs.map(h => h.innerText)")
    assert titles[:1] == ["tiger"] and set(titles[1:4]) == {"tiger shark", "tiger cat", "tiger beetle"}
    page.click(".md-search-result__list > li a")
    page.wait_for_url("**/vgg16/classes/292-tiger/")
    assert heading(page) == "tiger"


def test_thumbnail_opens_unit_page_and_zooms(page, base_url):
    page.goto(base_url + "/vgg16/block4_conv2/")
    page.wait_for_load_state("networkidle")  # a click mid-load would cancel the favicon request
    page.click("a.atlas-cell[href='17/']")
    page.wait_for_url("**/vgg16/block4_conv2/17/")
    assert heading(page) == "block4_conv2 #17"
    assert broken_images(page) == []
    page.click("a.atlas-zoom")
    overlay = page.wait_for_selector(".atlas-lightbox img")
    assert overlay.get_attribute("src").endswith("/vgg16/block4_conv2/17/image.webp")
    page.wait_for_function("document.querySelector('.atlas-lightbox img').naturalWidth > 0")
    shown, natural = page.evaluate("[document.querySelector('.atlas-main img').getBoundingClientRect().width,"
                                   " document.querySelector('.atlas-lightbox img').naturalWidth]")
    assert natural == 64 and shown * 2 <= natural, "the master has twice the pixels the page shows"
    page.keyboard.press("Escape")
    assert page.query_selector(".atlas-lightbox") is None
    page.wait_for_load_state("networkidle")
    page.click("a[rel=next]")
    page.wait_for_url("**/vgg16/block4_conv2/18/")


@pytest.mark.parametrize("path, images", [
    ("/vgg16/block4_conv2/", 7),
    ("/vgg16/classes/", 7),
    ("/examples/chelsea/", 1 + 4 + 2 * 14),  # photo, 4 maps, 14 filters x (activation map, attribution)
    ("/vgg16/block1_conv1/0/", 7),  # maximizing, minimizing, kernel, 2 x 2 top-example maps
])
def test_every_image_loads_after_scrolling(page, base_url, path, images):
    page.goto(base_url + path)
    scroll_through(page)
    assert page.eval_on_selector_all("article img", "images => images.length") == images
    assert broken_images(page) == []


def test_layer_grid_fits_a_phone(browser, base_url):
    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True)
    tab = context.new_page()
    tab.goto(base_url + "/vgg16/block4_conv2/")
    widths = tab.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    cells = tab.eval_on_selector_all("a.atlas-cell", "cells => cells.map(c => c.getBoundingClientRect().right)")
    context.close()
    assert widths[0] <= widths[1]
    assert len(cells) == 512 and max(cells) <= 360  # every filter, drawn or not


@pytest.mark.parametrize("path, title", [
    ("/vgg16/classes/607-jack-o-lantern/", "jack-o'-lantern"),
    ("/vgg16/classes/739-potter-s-wheel/", "potter's wheel"),
    ("/vgg16/classes/165-black-and-tan-coonhound/", "black-and-tan coonhound"),
    ("/examples/chelsea/", 'Chelsea the cat, "tabby" & friends'),
])
def test_labels_with_quotes_and_ampersands_reach_the_dom_intact(page, base_url, path, title):
    page.goto(base_url + path)
    assert heading(page) == title
    assert page.title() == f"{title} - VGG16 Atlas"
    assert page.inner_text(".md-header__topic:last-child .md-ellipsis") == title
    description = page.get_attribute("meta[name=description]", "content")
    assert title in description
    assert page.eval_on_selector_all("article script, article b, article i", "els => els.length") == 0


def test_example_alt_texts_keep_quotes(page, base_url):
    page.goto(base_url + "/vgg16/block4_conv2/17/")
    alts = page.eval_on_selector_all(".atlas-examples img", "images => images.map(i => i.alt)")
    assert 'Activation map of block4_conv2 #17 on Chelsea the cat, "tabby" & friends' in alts
    assert "Attribution of block4_conv2 #17 on Coffee cup's saucer" in alts


def test_lightbox_keeps_tiny_images_pixelated(page, base_url):
    page.goto(base_url + "/vgg16/block1_conv1/0/")  # the neuron's tiny image (no detail phase), shown pixelated
    page.wait_for_load_state("networkidle")
    assert page.eval_on_selector(".atlas-main img", "i => getComputedStyle(i).imageRendering") == "pixelated"
    page.click(".atlas-main a.atlas-zoom")
    page.wait_for_selector(".atlas-lightbox img")
    assert page.eval_on_selector(".atlas-lightbox img", "i => getComputedStyle(i).imageRendering") == "pixelated"


def test_search_index_loads_only_when_search_is_used(page, base_url):
    requested = []
    page.on("request", lambda request: "search_index.json" in request.url and requested.append(request.url))
    page.goto(base_url + "/vgg16/block4_conv2/")
    page.wait_for_load_state("networkidle")
    assert requested == []
    page.click("input.md-search__input")
    page.keyboard.type("block4_conv2 18", delay=20)
    assert first_result_path(page) == "/vgg16/block4_conv2/18/"
    assert len(requested) == 1


@pytest.mark.parametrize("query, expected, title", [
    ("block4_conv2 18", "/vgg16/block4_conv2/18/", "block4_conv2 #18"),  # not drawn: its page says how to draw it
    ("block5_conv3 #511", "/vgg16/block5_conv3/511/", "block5_conv3 #511"),
    ("block1_conv1/0", "/vgg16/block1_conv1/0/", "block1_conv1 #0"),
])
def test_search_opens_any_filter_drawn_or_not(page, base_url, query, expected, title):
    page.goto(f"{base_url}/?q={quote(query)}")
    assert first_result_path(page) == expected
    page.goto(base_url + expected)
    assert heading(page) == title


def test_undrawn_filter_page_says_how_to_draw_it_and_links_back(page, base_url):
    page.goto(base_url + "/vgg16/block4_conv2/")
    page.wait_for_load_state("networkidle")
    assert page.eval_on_selector_all("a.atlas-cell", "cells => cells.length") == 512
    page.click("a.atlas-undrawn[href='18/']")
    page.wait_for_url("**/vgg16/block4_conv2/18/")
    assert page.inner_text(".atlas-undrawn-note pre") == "python build.py --layers block4_conv2 --filters 18"
    assert page.eval_on_selector_all(".atlas-breadcrumbs li", "items => items.map(i => i.innerText)") == [
        "Home", "block4_conv2", "#18",
    ]
    page.wait_for_load_state("networkidle")
    page.click(".atlas-breadcrumbs a[href='../']")
    page.wait_for_url("**/vgg16/block4_conv2/")


def test_home_page_opens_on_pictures_that_link_to_units(page, base_url):
    page.goto(base_url + "/")
    tiles = page.eval_on_selector_all(
        ".atlas-mosaic a.atlas-tile", "tiles => tiles.map(t => [t.getAttribute('href'), t.querySelector('img').naturalWidth])"
    )
    assert len(tiles) == 13 + 6
    assert all(width == 96 for _, width in tiles)
    assert tiles[0][0] == "vgg16/block1_conv1/0/"
    top = page.eval_on_selector(".atlas-mosaic", "m => m.getBoundingClientRect().top")
    assert top < 900  # in the first view


def test_links_in_text_are_underlined(page, base_url):
    page.goto(base_url + "/")
    decoration = page.eval_on_selector("article p a", "a => getComputedStyle(a).textDecorationLine")
    assert decoration == "underline"


def test_downloads_page_shows_no_front_matter(page, base_url):
    page.goto(base_url + "/downloads/")
    text = page.inner_text("article")
    assert "description:" not in text and "title:" not in text
    assert heading(page) == "Downloads"


def test_compare_view_reads_and_writes_its_selection_in_the_url(page, base_url):
    page.goto(base_url + "/compare/?u=block4_conv2/17,block4_conv2/18,nonsense/3")
    page.wait_for_selector("#atlas-compare[data-ready=true]")
    cards = page.eval_on_selector_all(".atlas-compare__item", "cards => cards.map(c => c.dataset.unit)")
    assert cards == ["block4_conv2/17", "block4_conv2/18"]
    page.wait_for_function("document.querySelector('.atlas-compare__item img').naturalWidth === 64")  # detail master
    assert page.inner_text(".atlas-compare__item:nth-child(2) .atlas-compare__placeholder") == "not drawn yet"
    assert "nonsense/3" in page.inner_text(".atlas-compare__message")
    page.fill("#atlas-compare-input", "class 292")
    page.click(".atlas-compare__form button[type=submit]")
    page.wait_for_function("location.search === '?u=block4_conv2/17,block4_conv2/18,predictions/292'")
    assert page.inner_text(".atlas-compare__item:nth-child(3) figcaption > a") == "tiger"
    page.click(".atlas-compare__item:nth-child(1) .atlas-compare__remove")
    page.wait_for_function("location.search === '?u=block4_conv2/18,predictions/292'")
    page.wait_for_load_state("networkidle")
    page.click(".atlas-compare__item:nth-child(2) figcaption > a")
    page.wait_for_url("**/vgg16/classes/292-tiger/")


LAYOUT_SHIFT = """() => new Promise(resolve => {
  let total = 0
  new PerformanceObserver(list => list.getEntries().forEach(e => { if (!e.hadRecentInput) total += e.value }))
    .observe({type: "layout-shift", buffered: true})
  setTimeout(() => resolve(total), 300)
})"""


@pytest.mark.parametrize("query", ["?u=block4_conv2/17,block4_conv2/18,predictions/292", ""])
def test_compare_view_fills_in_without_moving_the_page(page, base_url, query):
    """The cards arrive after compare.json is fetched: space is kept for them (Lighthouse measured a
    layout shift of 0.21 there, the footer pushed down), and for the status line."""
    page.goto(base_url + "/compare/" + query)
    page.wait_for_selector("#atlas-compare[data-ready=true]")
    page.wait_for_load_state("networkidle")
    assert page.evaluate(LAYOUT_SHIFT) < 0.01


def test_unit_page_compare_link_opens_the_compare_view(page, base_url):
    page.goto(base_url + "/vgg16/block4_conv2/17/")
    page.wait_for_load_state("networkidle")
    page.click("a:text('Compare')")
    page.wait_for_url("**/compare/?u=block4_conv2/17")
    page.wait_for_selector(".atlas-compare__item[data-unit='block4_conv2/17']")

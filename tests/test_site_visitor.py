"""What a visitor meets (issue 11), at the level of the rendered Markdown: front matter that parses,
real image sizes and robustness shifts, labelled overlay pairs with a colour scale, ranks from 1,
what example maps explain, one class list, a page for every unit with the command that draws it,
breadcrumbs, the home page mosaic and the compare page's data."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

from generator.architecture import CONV_LAYERS  # noqa: E402
from generator.classes import load_classes  # noqa: E402
from generator.plan import plan_layer  # noqa: E402
from generator.site import draw_command, inferno_gradient, render_site, robustness_shift  # noqa: E402
from generator.synthetic import make_small_atlas  # noqa: E402


def front_matter(path):
    text = Path(path).read_text(encoding="utf-8")
    assert text.startswith("---\n"), path
    return yaml.safe_load(text.split("---\n")[1])


def rewrite_json(path, change):
    """Apply `change` (a function of the parsed JSON) to the JSON file at `path`."""
    data = json.loads(Path(path).read_text())
    change(data)
    Path(path).write_text(json.dumps(data))


@pytest.fixture(scope="module")
def site_src(tmp_path_factory):
    """The small synthetic atlas with the shapes a real preview run has, rendered once:
    block1_conv1 #1 drawn 10x11 px; example ranks as {target, rank} from 0; coffee analysed
    without the classifier head (its maps explain a filter); block4_conv2 #171 the most specific."""
    site_src = tmp_path_factory.mktemp("visitor") / "site_src"
    make_small_atlas(site_src)
    Image.fromarray(np.full((11, 10, 3), 128, np.uint8)).save(site_src / "vgg16/block1_conv1/1/image.webp")

    def real_ranks(example):
        example["settings"]["units"] = [{"target": unit["target"], "rank": unit["rank"]} for unit in example["units"]]

    rewrite_json(site_src / "examples/chelsea/example.json", real_ranks)

    def without_head(example):
        example["predictions"] = []
        for entry in example["maps"]:
            entry["target"] = "block4_conv2 #17"

    rewrite_json(site_src / "examples/coffee/example.json", without_head)
    rewrite_json(site_src / "vgg16/block4_conv2/171/unit.json", lambda record: record["results"].update(specificity=9.0))
    render_site(site_src)
    return site_src


def test_every_page_front_matter_parses_with_title_and_description(site_src):
    pages = ["index.md", "methods.md", "credits.md", "downloads.md", "compare.md", "vgg16/block4_conv2/index.md",
             "vgg16/block4_conv2/17/index.md", "vgg16/block4_conv2/18/index.md", "vgg16/classes/index.md",
             "vgg16/classes/292-tiger/index.md", "examples/index.md", "examples/chelsea/index.md"]
    for page in pages:
        meta = front_matter(site_src / page)
        assert isinstance(meta["title"], str) and isinstance(meta["description"], str), page
    assert front_matter(site_src / "downloads.md")["description"].startswith("The atlas data: the manifest")


def test_captions_state_the_real_image_size_and_the_shift_used(site_src):
    page = (site_src / "vgg16/block1_conv1/1/index.md").read_text()
    assert '<img src="image.webp" width="10" height="11"' in page
    assert "(10&times;11 px; click to zoom)" in page and "11&times;11" not in page
    assert "shifted by 1&nbsp;px" in page and "4 px" not in page
    detail = (site_src / "vgg16/block4_conv2/17/index.md").read_text()  # drawn for 32 px, detail at 64
    assert "shifted by 2&nbsp;px" in detail  # measured at the 32 px it was drawn for
    assert '<img src="image.webp" width="32" height="32"' in detail
    assert "(64&times;64 px, shown at 32 px; click to zoom)" in detail


def test_a_class_page_shows_its_detail_master_at_half_its_side(site_src):
    """A synthetic class record is shaped as a real one: a master twice the side it was drawn at."""
    record_path = next((site_src / "vgg16/classes").glob("*/unit.json"))
    record = json.loads(record_path.read_text())
    size = record["settings"]["size"]
    steps = plan_layer("predictions").settings.detail_steps
    assert record["settings"]["detail"] == {"size": 2 * size, "steps": steps, "view": size}
    page = (record_path.parent / "index.md").read_text()
    assert f'<img src="image.webp" width="{size}" height="{size}"' in page
    assert f"({2 * size}&times;{2 * size} px, shown at {size} px; click to zoom)" in page


def test_robustness_shift_follows_the_quality_measure():
    quality = pytest.importorskip("generator.quality")
    for height in (10, 11, 24, 32, 48, 64, 224):
        image = np.arange(height * height * 3, dtype=np.uint8).reshape(height, height, 3)
        shifted = quality.variants(image)[0]  # shifted down by the shift, reflected
        shift = next(s for s in range(1, 5) if np.array_equal(shifted[s:], image[:-s]))
        assert robustness_shift(height) == shift, height


def test_tiny_images_are_pixelated(site_src):
    assert '<figure class="atlas-figure atlas-main atlas-pixelated">' in (site_src / "vgg16/block1_conv1/1/index.md").read_text()


def test_example_ranks_count_from_1_everywhere(site_src):
    page = (site_src / "examples/chelsea/index.md").read_text()
    assert "block4\\_conv2 \\#17 \\(rank 1\\)" in page  # reproducibility table
    assert "activation 10, rank 1" in page
    assert "rank 0" not in page and "rank': 0" not in page


def test_overlay_pairs_are_labelled_and_have_a_colour_scale(site_src):
    for page in ("examples/chelsea/index.md", "vgg16/block4_conv2/17/index.md"):
        text = (site_src / page).read_text()
        pairs = text.count('<div class="atlas-pair">')
        assert pairs >= 2
        assert text.count("<figcaption>activation map</figcaption>") == pairs
        assert text.count("<figcaption>attribution</figcaption>") == pairs
        assert f'<span class="atlas-scale__bar" style="background: {inferno_gradient()}">' in text
    gradient = inferno_gradient()
    assert gradient.startswith("linear-gradient(to right, #000004,") and gradient.endswith("#fcffa4)")


def test_example_pages_say_what_the_maps_explain(site_src):
    home = (site_src / "index.md").read_text()
    assert "saliency maps of the top class" not in home and "top-1 predicted class" in home
    chelsea = (site_src / "examples/chelsea/index.md").read_text()
    assert "These maps explain the <strong>top-1 predicted class</strong>, " \
        '<a href="../../vgg16/classes/281-tabby/">class 281 tabby</a>' in chelsea
    assert 'Also explained: the class <a href="../../vgg16/classes/607-jack-o-lantern/">' in chelsea
    coffee = (site_src / "examples/coffee/index.md").read_text()
    assert 'These maps explain the filter <a href="../../vgg16/block4_conv2/17/">block4_conv2 #17</a>' in coffee
    assert "there is no predicted class to explain" in coffee and "excites most relative to the other" in coffee


def test_class_index_is_one_list_without_an_image_column(site_src):
    index = (site_src / "vgg16/classes/index.md").read_text()
    assert "Image |" not in index and "By name" not in index
    for imagenet_class in load_classes():
        assert index.count(f'<li><a href="{imagenet_class.dir_name}/">') == 1
    assert index.count("<li>") == 1000
    assert index.count('thumb.webp" loading="lazy"') == 7  # the drawn classes have a thumbnail in the list
    assert '<li><a href="292-tiger/"><img src="292-tiger/thumb.webp" loading="lazy" decoding="async" width="32" ' \
        'height="32" alt="">tiger</a> <span class="atlas-wnid">n02129604</span></li>' in index
    assert len(index.encode()) < 120_000


def test_every_filter_and_class_has_a_page_that_says_how_to_draw_it(site_src):
    for layer in CONV_LAYERS:
        assert len(list((site_src / "vgg16" / layer.name).glob("*/index.md"))) == layer.filters
    page = (site_src / "vgg16/block4_conv2/18/index.md").read_text()
    assert front_matter(site_src / "vgg16/block4_conv2/18/index.md")["title"] == "block4_conv2 #18"
    assert "Not drawn yet" in page and "<code>python build.py --layers block4_conv2 --filters 18</code>" in page
    jay = (site_src / "vgg16/classes/17-jay/index.md").read_text()
    assert "<code>python build.py --classes 17 --weights imagenet</code>" in jay
    assert draw_command("predictions", 20) == "python build.py --classes 20 --weights imagenet"
    grid = (site_src / "vgg16/block4_conv2/index.md").read_text()
    assert "Drawn so far: [#0](0/index.md), [#1](1/index.md), [#2](2/index.md), [#17](17/index.md), " \
        "[#170](170/index.md), [#171](171/index.md), [#175](175/index.md)." in grid
    assert '<a class="atlas-cell atlas-undrawn" href="18/" aria-label="Filter 18 of block4_conv2, not drawn yet">' in grid


def test_unit_class_and_example_pages_have_breadcrumbs(site_src):
    assert front_matter(site_src / "vgg16/block4_conv2/18/index.md")["breadcrumbs"] == [
        ["Home", "."], ["block4_conv2", "vgg16/block4_conv2/"], ["#18", None],
    ]
    assert front_matter(site_src / "vgg16/classes/292-tiger/index.md")["breadcrumbs"][1:] == [
        ["Classes", "vgg16/classes/"], ["292 tiger", None],
    ]
    assert front_matter(site_src / "examples/chelsea/index.md")["breadcrumbs"][2] == [
        "Chelsea the cat, &#34;tabby&#34; &amp; friends", None,  # HTML-escaped like every front-matter label
    ]


def test_home_page_opens_on_a_mosaic_of_layers_and_classes(site_src):
    home = (site_src / "index.md").read_text()
    tiles = [line for line in home.splitlines() if line.startswith('<a class="atlas-tile"')]
    assert len(tiles) == len(CONV_LAYERS) + 6
    assert home.index("atlas-mosaic") < home.index("## How to read it")
    assert tiles[0].startswith('<a class="atlas-tile" href="vgg16/block1_conv1/0/"><img src="vgg16/block1_conv1/0/thumb.webp"')
    assert tiles[8].startswith('<a class="atlas-tile" href="vgg16/block4_conv2/171/">')  # the best specificity margin
    for tile in tiles:
        url = tile.split('href="')[1].split('"')[0]
        assert (site_src / url / "index.md").is_file()


def test_compare_data_holds_every_drawn_unit(site_src):
    data = json.loads((site_src / "vgg16/compare.json").read_text())
    assert data["layers"]["block4_conv2"] == 512 and len(data["classes"]) == 1000
    assert data["classes"][20] == "20-water-ouzel"
    assert len(data["units"]) == 3 * len(CONV_LAYERS) + 4 + 7
    unit = data["units"]["block1_conv1/1"]
    steps = plan_layer("block1_conv1").settings.steps  # the synthetic records carry the plan's settings
    assert unit == {"w": 10, "h": 11, "r": [1.1, 0.5, 0.75, False], "s": [32, steps, 1], "pixel": 1}
    assert data["units"]["predictions/607"]["label"] == "jack-o'-lantern"

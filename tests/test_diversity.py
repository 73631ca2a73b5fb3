"""`--diversity K`: K images per unit pushed apart by a Gram-cosine term (Olah et al. 2017).

Known answers on the tiny pattern CNN of test_render_known_answer (trained there, reused here);
K = 1 leaves the committed atlas current; K is in the plan, the cost, the records and resume.
"""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from test_render_known_answer import GREEN, HORIZONTAL, RED, SIZE, VERTICAL, pattern_model, preprocess  # noqa: F401

from generator import cost, records, store
from generator.errors import UserError
from generator.optvis.objectives import gram_similarity, layer_scores, unit_objective
from generator.optvis.render import Renderer, image_seeds
from generator.optvis.settings import RenderSettings, Transforms
from generator.optvis.transform import frame
from generator.plan import DrawOptions, Quality, diversity_layer, kept_options, plan_layer
from generator.site import render_site
from generator.synthetic import SMALL_ATLAS_DIVERSE, make_small_atlas
from generator.units import Unit

ROOT = Path(__file__).resolve().parents[1]
K = 4
UNITS = [VERTICAL, HORIZONTAL, RED, GREEN]
SETTINGS = RenderSettings(size=SIZE, steps=64, batch_size=len(UNITS),
                          transforms=Transforms(pad=2, jitter=2, scale_range=(0.95, 1.05), rotate_degrees=5))


@pytest.fixture(scope="module")
def drawn(pattern_model):  # noqa: F811
    """{weight: (images (4 units x K, SIZE, SIZE, 3) uint8, scores (4 x K,))} at K = 4, and K = 1's."""
    with_features = layer_scores(pattern_model, "logits", preprocess, feature_layer="conv1")
    seeds = [11, 12, 13, 14]
    results = {}
    for weight in (0.0, 1.0):
        renderer = Renderer(unit_objective(with_features), replace(SETTINGS, diversity=K, diversity_weight=weight),
                            gram_similarity)
        results[weight] = renderer.render(UNITS, seeds)
    single = Renderer(unit_objective(layer_scores(pattern_model, "logits", preprocess)), SETTINGS)
    results["K=1"] = single.render(UNITS, seeds)

    def style_similarity(images):
        _, features = with_features(frame(tf.constant(images, tf.float32) / 255.0, SETTINGS.transforms.pad))
        return gram_similarity(features, K).numpy()

    return results, style_similarity


def test_the_diversity_term_makes_a_units_images_less_alike(drawn):
    results, style_similarity = drawn
    off, on = style_similarity(results[0.0][0]), style_similarity(results[1.0][0])
    assert off.min() > 0.95, off  # seeds alone give images of one style
    assert on.mean() < off.mean() - 0.05, (on, off)
    assert (on < off).all(), (on, off)


def test_every_diverse_image_still_drives_its_unit(drawn):
    results, _ = drawn
    single = results["K=1"][1]
    fractions = results[1.0][1].reshape(len(UNITS), K) / single[:, None]
    assert (single > 5).all(), single
    assert fractions.min() > 0.4, fractions
    assert np.median(fractions) > 0.85, fractions


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_each_units_master_is_its_single_image(drawn, weight):
    """The master comes from the unit's own seed and does not move for the penalty: it is the
    image K = 1 draws (up to the last bits a batch of another size moves); the others differ."""
    results, _ = drawn
    first = results[weight][0][::K].astype(int)
    assert np.abs(first - results["K=1"][0].astype(int)).max() <= 2
    others = results[weight][0].reshape(len(UNITS), K, -1).astype(int)
    assert np.abs(others[:, 1] - others[:, 0]).mean() > 5


def test_image_seeds_are_the_units_then_derived_distinct_and_stable():
    seeds = image_seeds([7, 9], 3)
    assert seeds.dtype == np.int64 and seeds.shape == (6,)
    assert seeds[0] == 7 and seeds[3] == 9
    assert len(set(seeds.tolist())) == 6 and (seeds >= 0).all() and (seeds < 2**31).all()
    np.testing.assert_array_equal(seeds, image_seeds([7, 9], 3))
    np.testing.assert_array_equal(image_seeds([9], 3), seeds[3:])
    np.testing.assert_array_equal(image_seeds([7, 9], 1), [7, 9])


def test_gram_similarity_known_answers():
    features = np.zeros((4, 2, 2, 2), np.float32)
    features[0, :, :, 0] = 1.0  # only channel 0
    features[1, :, :, 0] = 3.0  # the same style, brighter
    features[2, :, :, 0] = 1.0
    features[3, :, :, 1] = 1.0  # only channel 1: orthogonal Gram
    similarity = gram_similarity(tf.constant(features), 2).numpy()
    np.testing.assert_allclose(similarity, [1.0, 0.0], atol=1e-6)


def test_diverse_batches_do_not_retrace(pattern_model):  # noqa: F811
    settings = replace(SETTINGS, steps=3, batch_size=2, diversity=2, diversity_weight=1.0)
    scores = layer_scores(pattern_model, "conv2", preprocess, feature_layer="conv1")
    renderer = Renderer(unit_objective(scores), settings, gram_similarity)
    images, values = renderer.render([1, 2, 3], seeds=[1, 2, 3])  # a full batch, then a short one
    assert images.shape == (6, SIZE, SIZE, 3) and values.shape == (6,)
    renderer.render([4], seeds=[4])
    assert renderer._optimize.experimental_get_tracing_count() == 1


def test_a_diverse_renderer_needs_its_similarity():
    with pytest.raises(ValueError, match="diversity"):
        Renderer(lambda images, units: None, replace(SETTINGS, diversity=2))
    with pytest.raises(ValueError, match="1..16"):
        replace(SETTINGS, diversity=17)


# --- plan, records, cost, resume -----------------------------------------------------------------


def test_k1_leaves_every_committed_record_current():
    preview = DrawOptions(quality=Quality.PREVIEW)
    committed = store.read_records(ROOT / "site_src")
    assert committed
    for record in committed:  # drawn at the preview defaults, or at the full ones that a preview keeps
        seed = Unit(record["layer"], record["index"]).seed()
        current = [plan_layer(record["layer"], options).record_settings(seed, options)
                   for options in [preview, *kept_options(preview)]]
        assert record["settings"] in current, record["url"]
        assert "diverse" not in record["images"]


def test_k_is_recorded_with_its_layer_and_weight():
    options = DrawOptions(diversity=3)
    settings = plan_layer("block3_conv1", options).record_settings(5, options)
    assert settings["diversity"] == {"images": 3, "weight": settings["diversity"]["weight"], "layer": "block2_conv2"}
    assert settings["diversity"]["weight"] > 0
    assert "diversity" not in plan_layer("block3_conv1").record_settings(5, DrawOptions())
    assert [diversity_layer(name) for name in ("block1_conv1", "block2_conv1", "predictions")] == \
        ["block1_conv1", "block1_conv2", "block5_conv3"]
    with pytest.raises(UserError, match="--diversity must be at least 1 and at most 16"):
        DrawOptions(diversity=0)


def test_cost_counts_k_images_per_unit():
    single = cost.batch_cost("block3_conv1", DrawOptions())
    double = cost.batch_cost("block3_conv1", DrawOptions(diversity=2))
    plan = plan_layer("block3_conv1")
    quality = cost.QUALITY_PASSES * cost.forward_flops("block3_conv1", plan.input_size) * plan.settings.batch_size
    assert double.flops - quality == pytest.approx(2 * (single.flops - quality))
    with_negative = cost.batch_cost("block3_conv1", DrawOptions(diversity=2, negative=True))
    assert with_negative.flops - quality == pytest.approx(3 * (single.flops - quality))  # one negative per unit
    assert cost.batch_memory_bytes("block3_conv1", DrawOptions(diversity=4)) == \
        4 * cost.batch_memory_bytes("block3_conv1", DrawOptions())
    # K is counted in FLOPs over the calibrated seconds per image-step: no new calibration needed.
    assert cost.plan_fingerprint(DrawOptions(diversity=2)) == cost.plan_fingerprint()


def _write_unit(site_src, diversity):
    options = DrawOptions(diversity=diversity)
    settings = plan_layer("block3_conv1", options).record_settings(42, options)
    provenance = {"weights_source": "embedded", "weights_sha256": "0" * 64, "versions": {}, "created": records.utc_now()}
    record = records.unit_record("block3_conv1", 7, settings, provenance, 3.0, diverse=diversity - 1)
    image = np.zeros((records.master_side(settings),) * 2 + (3,), np.uint8)
    files = {name: image for name in records.image_files(record)}
    unit_dir = records.unit_dir(site_src, "block3_conv1", 7)
    store.write_unit(unit_dir, record, files)
    return unit_dir, record


def test_a_changed_k_makes_a_unit_stale(tmp_path):
    unit_dir, record = _write_unit(tmp_path, 3)
    assert record["images"]["diverse"] == ["diverse-1.webp", "diverse-2.webp"]
    assert records.unit_problem(json.loads((unit_dir / "unit.json").read_text())) is None
    sha = "0" * 64
    assert store.is_complete(unit_dir, record["settings"], sha)
    for other in (1, 2):
        options = DrawOptions(diversity=other)
        assert not store.is_complete(unit_dir, plan_layer("block3_conv1", options).record_settings(42, options), sha)
    (unit_dir / "diverse-2.webp").unlink()
    assert not store.is_complete(unit_dir, record["settings"], sha)


def test_k1_records_list_no_diverse_images_and_bad_diversity_breaks_the_contract(tmp_path):
    _, record = _write_unit(tmp_path, 1)
    assert "diverse" not in record["images"] and "diversity" not in record["settings"]
    _, diverse = _write_unit(tmp_path / "k2", 2)
    broken = json.loads(json.dumps(diverse))
    broken["settings"]["diversity"]["images"] = 1
    assert "diversity" in records.unit_problem(broken)
    broken = json.loads(json.dumps(diverse))
    broken["images"]["diverse"] = ["../image.webp"]
    assert "images/diverse" in records.unit_problem(broken)


def test_an_out_of_range_k_is_one_line_before_tensorflow_loads():
    script = ("import sys\nfrom generator import cli\n"
              "code = cli.main(['--layers', 'block3_conv1', '--diversity', '17'])\nprint(code, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["2", "False"], (result.stdout, result.stderr)
    assert result.stderr.strip() == "error: --diversity must be at least 1 and at most 16 (got 17)"


def test_unit_pages_show_the_diverse_images_in_a_strip(tmp_path):
    make_small_atlas(tmp_path)
    render_site(tmp_path)
    layer, index, diversity = SMALL_ATLAS_DIVERSE
    page = (tmp_path / f"vgg16/{layer}/{index}/index.md").read_text()
    strip = page[page.index('<div class="atlas-diverse'):]
    assert [f'src="diverse-{n}.webp"' in strip for n in range(1, diversity)] == [True] * (diversity - 1)
    assert f"Image {diversity} of {diversity} that maximizes" in strip
    assert strip.index("diverse-1.webp") < strip.index("diverse-2.webp")
    assert "atlas-diverse" not in (tmp_path / f"vgg16/{layer}/171/index.md").read_text()


def test_a_redraw_with_fewer_images_removes_the_diverse_images_it_no_longer_lists(tmp_path):
    unit_dir, _ = _write_unit(tmp_path, 3)
    (unit_dir / "notes.txt").write_text("a user's file")
    _write_unit(tmp_path, 2)
    assert (unit_dir / "diverse-1.webp").is_file() and not (unit_dir / "diverse-2.webp").exists()
    _write_unit(tmp_path, 1)
    assert not list(unit_dir.glob("diverse-*")) and (unit_dir / "notes.txt").is_file()

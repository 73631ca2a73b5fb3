"""build.py paths that users rely on, end to end through the CLI on tiny selections.

- `--preview` with the saliency stage: example pages and top_examples.json;
- `--render-only` on the committed site_src, then `mkdocs build --strict`, as the Pages workflow;
- `--seed`, `--force`, `--precision`, and a redraw when the weights checksum changes.

The embedded weights (conv base; tests/conftest.py fills their cache) and 2 steps keep each run
to seconds; every run is a separate process, as a user runs it.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_support import build

from generator.plan import PREVIEW_SIZES
from generator.photos import builtin_photos
from generator.units import Unit, sample_indices
from generator.fileio import sha256_file

ROOT = Path(__file__).resolve().parents[1]
PREVIEW_LAYERS = {"block1_conv1": 64, "block5_conv3": 512}  # layer -> filters
TINY_UNIT = Unit("block1_conv2", 0)
TINY = ["--layers", TINY_UNIT.layer, "--filters", str(TINY_UNIT.index), "--steps", "2", "--size", "16",
        "--no-examples", "--no-progress"]
TINY_DIR = f"vgg16/{TINY_UNIT.layer}/{TINY_UNIT.index}"
SENTINEL = "2000-01-01T00:00:00Z"  # a `created` no run writes


def draw(out, *args):
    """Draw TINY_UNIT into `out` with extra `args` (default weights: embedded); stderr of the run."""
    weights = [] if "--weights" in args else ["--weights", "embedded"]
    result = build(*TINY, *weights, *args, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def record(out):
    return json.loads((out / TINY_DIR / "unit.json").read_text())


def image_bytes(out):
    return (out / TINY_DIR / "image.webp").read_bytes()


def mark_created(out):
    """Set the unit's `created` to SENTINEL, so that a redraw shows whatever the clock did."""
    unit = record(out)
    unit["provenance"]["created"] = SENTINEL
    (out / TINY_DIR / "unit.json").write_text(json.dumps(unit, indent=1))


def _photo_folder(directory, count=2):
    """`count` of the built-in photos copied into `directory` (a user's --images folder)."""
    directory.mkdir()
    for photo in builtin_photos()[:count]:
        shutil.copy(photo.path, directory / f"{photo.slug}{photo.path.suffix}")
    return directory


def _preview(out, *args):
    result = build("--preview", "--per-layer", 1, "--layers", ",".join(PREVIEW_LAYERS), "--steps", 2,
                   "--weights", "embedded", "--no-progress", "--out", out, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def _check_preview(out, slugs, methods):
    """The preview's units, example pages and top examples are all there and linked."""
    sampled = {layer: sample_indices(layer, filters, 1)[0] for layer, filters in PREVIEW_LAYERS.items()}
    drawn = sorted(path.parent.relative_to(out / "vgg16").as_posix() for path in out.glob("vgg16/*/*/unit.json"))
    assert drawn == sorted(f"{layer}/{index}" for layer, index in sampled.items())
    deep = json.loads((out / f"vgg16/block5_conv3/{sampled['block5_conv3']}/unit.json").read_text())
    assert deep["settings"]["size"] == PREVIEW_SIZES[5] and deep["settings"]["steps"] == 2 + 2  # + detail
    assert deep["settings"]["detail"] == {"size": 2 * PREVIEW_SIZES[5], "steps": 2}  # as short as the drawing

    for slug in slugs:
        example = json.loads((out / "examples" / slug / "example.json").read_text())
        assert example["slug"] == slug and (out / "examples" / slug / "index.md").is_file()
        assert all((out / "examples" / slug / f"{method}.webp").is_file() for method in methods)
    top = json.loads((out / "examples/top_examples.json").read_text())
    assert sorted(top) == sorted(f"{layer}/{index}" for layer, index in sampled.items())
    for key, entries in top.items():
        assert 1 <= len(entries) <= 3 and {entry["slug"] for entry in entries} <= set(slugs)
        activations = [entry["activation"] for entry in entries]
        assert activations == sorted(activations, reverse=True)
        for entry in entries:
            for name in ("photo", "attribution", "activation_map"):
                assert (out / entry[name]).is_file(), entry[name]
        unit_page = (out / "vgg16" / key / "index.md").read_text()
        assert f"../../../examples/{entries[0]['slug']}/" in unit_page
        assert f"../../../{entries[0]['attribution']}" in unit_page
    examples_index = (out / "examples/index.md").read_text()
    assert all(f'<a href="{slug}/">' in examples_index for slug in slugs)


def test_preview_with_the_saliency_stage(tmp_path):
    """--preview on a tiny selection: 1 unit in 2 layers, 2 photos of the user, one method."""
    photos = _photo_folder(tmp_path / "photos")
    out = tmp_path / "site_src"
    stderr = _preview(out, "--images", photos, "--no-builtin-images", "--methods", "vanilla")
    assert "examples: 2 pages from 2 readable photos (0 skipped), 2 units ranked" in stderr
    _check_preview(out, [photo.slug for photo in builtin_photos()[:2]], ["vanilla"])
    assert "dataset examples: 2 of 2 photos ranked" in stderr
    records = sorted(out.glob("vgg16/*/*/dataset.json"))
    assert [path.parent for path in records] == sorted(path.parent for path in out.glob("vgg16/*/*/unit.json"))
    for path in records:
        patches = json.loads(path.read_text())["patches"]
        assert 1 <= len(patches) <= 2 and all(patch["licence"] == "licence unknown" for patch in patches)
        assert all((path.parent / patch["file"]).is_file() for patch in patches)
        assert "<h2>Dataset examples</h2>" in (path.parent / "index.md").read_text()


@pytest.mark.slow
def test_preview_with_every_saliency_method_and_the_builtin_photos(tmp_path):
    out = tmp_path / "site_src"
    _preview(out)
    _check_preview(out, [photo.slug for photo in builtin_photos()], ["vanilla", "smoothgrad", "guided_backprop",
                                                                    "integrated_gradients"])


def test_render_only_on_the_committed_site_src_then_mkdocs_strict(tmp_path):
    """The Pages workflow's two commands, run in a copy of the project's site files."""
    project = tmp_path / "project"
    # The committed data only: rendered pages are git-ignored outputs (*.md, units.csv).
    shutil.copytree(ROOT / "site_src", project / "site_src", ignore=shutil.ignore_patterns("*.md", "units.csv"))
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    (project / "templates").symlink_to(ROOT / "templates")
    records = sorted((project / "site_src").glob("vgg16/*/*/unit.json"))
    examples = sorted((project / "site_src").glob("examples/*/example.json"))
    assert records and examples and not list((project / "site_src").rglob("index.md"))

    render = build("--render-only", cwd=project)
    assert render.returncode == 0, render.stderr
    html = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=project, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert html.returncode == 0, html.stderr[-3000:]
    assert "WARNING" not in html.stderr

    site = project / "site"
    for path in records:
        unit = json.loads(path.read_text())
        page = site / unit["url"] / "index.html"
        assert page.is_file(), unit["url"]
        assert f'src="{unit["images"]["master"]}"' in page.read_text(encoding="utf-8")
        assert (site / unit["url"] / unit["images"]["master"]).is_file()
    for path in examples:
        assert (site / "examples" / path.parent.name / "index.html").is_file()
    assert (site / "vgg16/classes/20-water-ouzel/index.html").is_file() and (site / "index.html").is_file()


def test_seed_changes_the_image_and_the_same_seed_reproduces_it(tmp_path):
    out = tmp_path / "site_src"
    draw(out)
    first_image, first = image_bytes(out), record(out)
    assert first["settings"]["seed"] == TINY_UNIT.seed(0)

    draw(out, "--seed", 7)
    assert record(out)["settings"]["seed"] == TINY_UNIT.seed(7) != first["settings"]["seed"]
    assert image_bytes(out) != first_image

    stderr = draw(out, "--seed", 0)
    assert "resume:" not in stderr
    assert image_bytes(out) == first_image and record(out)["settings"] == first["settings"]


def test_force_and_precision_redraw_a_complete_unit(tmp_path):
    """bfloat16 is recorded; --force redraws the complete unit; float32 then redraws it again."""
    out = tmp_path / "site_src"
    draw(out, "--precision", "bfloat16")
    assert record(out)["settings"]["precision"] == "bfloat16"

    mark_created(out)
    stderr = draw(out, "--precision", "bfloat16", "--force")
    assert "resume:" not in stderr and record(out)["provenance"]["created"] != SENTINEL

    mark_created(out)
    stderr = draw(out)
    assert "resume:" not in stderr
    assert record(out)["settings"]["precision"] == "float32" and record(out)["provenance"]["created"] != SENTINEL


def test_a_changed_weights_checksum_redraws(embedded_vgg16, tmp_path):
    """The same selection from two weights files: the second redraws with its own checksum."""
    from generator.model import build_vgg16

    first_file, second_file = tmp_path / "first.weights.h5", tmp_path / "second.weights.h5"
    embedded_vgg16.model.save_weights(first_file)
    other = build_vgg16(include_top=False)
    other.set_weights(embedded_vgg16.model.get_weights())
    kernel, bias = other.get_layer("block1_conv1").get_weights()
    noise = np.random.default_rng(0).normal(0.0, kernel.std(), kernel.shape).astype(kernel.dtype)
    other.get_layer("block1_conv1").set_weights([kernel + noise, bias])
    other.save_weights(second_file)

    out = tmp_path / "site_src"
    draw(out, "--weights", first_file)
    first_image, first = image_bytes(out), record(out)
    assert first["provenance"]["weights_sha256"] == sha256_file(first_file)
    assert first["provenance"]["weights_source"] == "path:first.weights.h5"

    stderr = draw(out, "--weights", second_file)
    assert "resume:" not in stderr
    second = record(out)
    assert second["provenance"]["weights_sha256"] == sha256_file(second_file) != sha256_file(first_file)
    assert second["provenance"]["weights_source"] == "path:second.weights.h5"
    assert second["settings"] == first["settings"] and image_bytes(out) != first_image
    manifest = json.loads((out / "vgg16/manifest.json").read_text())
    assert manifest["weights"]["sha256"] == sha256_file(second_file)

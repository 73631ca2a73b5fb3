"""The saliency methods' table and the stage's options (generator.saliency_methods, generator.example_options):
checked without TensorFlow, so build.py can refuse bad choices before importing it."""

import subprocess
import sys

import pytest

from generator.errors import UserError
from generator.example_options import ExampleOptions
from generator.saliency_methods import METHOD_NAMES, METHOD_TITLES, AttributionSettings, parse_methods


def test_the_light_modules_import_without_tensorflow():
    code = ("import sys, generator.saliency_methods, generator.example_options, generator.photos; "
            "print(sorted(name for name in ('tensorflow', 'keras') if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_method_table_names_and_titles():
    assert METHOD_NAMES == ("vanilla", "smoothgrad", "guided_backprop", "gradcam", "gradcam_plus_plus", "scorecam",
                            "integrated_gradients")
    assert METHOD_TITLES["gradcam_plus_plus"] == "Grad-CAM++" and len(METHOD_TITLES) == 7


def test_parse_methods():
    assert parse_methods(None) == METHOD_NAMES
    assert parse_methods("gradcam, vanilla,gradcam") == ("gradcam", "vanilla")
    with pytest.raises(UserError, match=r"unknown saliency method\(s\) bogus; choose from vanilla, smoothgrad"):
        parse_methods("vanilla,bogus")
    with pytest.raises(UserError, match="empty name"):
        parse_methods("vanilla,")


@pytest.mark.parametrize("choices, words", [
    (dict(methods=["occlusion"]), "unknown saliency method"),
    (dict(unit_method="lime"), "unknown saliency method"),
    (dict(top_k=0), "--top-k must be at least 1"),
    (dict(max_pages=0), "--example-pages must be at least 1"),
])
def test_bad_options_are_one_line_user_errors(choices, words):
    with pytest.raises(UserError, match=words) as error:
        ExampleOptions(**choices)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("settings, words", [
    (dict(smoothgrad_samples=0), "smoothgrad_samples must be at least 1"),
    (dict(batch_size=0), "batch_size must be at least 1"),
    (dict(smoothgrad_noise=float("nan")), "smoothgrad_noise must be a finite number"),
])
def test_bad_attribution_settings_are_user_errors(settings, words):
    with pytest.raises(UserError, match=words):
        AttributionSettings(**settings)


def test_options_are_typed_and_frozen(tmp_path):
    options = ExampleOptions(methods=["vanilla"], images_dir=str(tmp_path))
    assert options.methods == ("vanilla",) and options.images_dir == tmp_path
    assert ExampleOptions().methods == METHOD_NAMES and ExampleOptions().unit_method == "guided_backprop"
    with pytest.raises(AttributeError):
        options.top_k = 5

"""The records contract (generator.records), the typed options (generator.plan) and the storage
rules that keep records honest (generator.store, generator.fileio, generator.scoring)."""

import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from generator import records, store
from generator.errors import UserError
from generator.fileio import atomic_write_bytes, remove_stale_temporaries
from generator.plan import NEURON_LAYER, DrawOptions, Objective, Precision, Quality, plan_layer
from generator.synthetic import filter_record, make_small_atlas, write_synthetic_unit

ROOT = Path(__file__).resolve().parents[1]


# --- the contract ------------------------------------------------------------------------------


def test_committed_preview_data_follows_the_contract():
    site_src = ROOT / "site_src"
    unit_records = store.read_records(site_src)
    assert len(unit_records) >= 39
    assert store.read_manifest(site_src)["layers"]["block1_conv1"]["computed"] >= 3
    for path in (site_src / "examples").glob("*/example.json"):
        assert records.example_problem(json.loads(path.read_text()), path.parent.name) is None, path


def test_urls_follow_the_contract():
    assert records.unit_url("block4_conv2", 17) == "vgg16/block4_conv2/17/"
    assert records.unit_url("predictions", 20) == "vgg16/classes/20-water-ouzel/"
    assert records.example_url("chelsea") == "examples/chelsea/"
    assert records.is_unit("block1_conv1", 63) and not records.is_unit("block1_conv1", 64)
    assert not records.is_unit("block1_conv1", True) and not records.is_unit("predictions", 1000)


def _valid_record():
    return filter_record("block2_conv1", 5)


@pytest.mark.parametrize("change, words", [
    (lambda r: r.update(schema=2), "schema"),
    (lambda r: r.update(settings=None), "settings"),
    (lambda r: r.update(index="3"), "index"),
    (lambda r: r.update(index=128), "names no VGG16 unit"),
    (lambda r: r.update(url="vgg16/block2_conv1/05/"), "is not the contract's"),
    (lambda r: r["images"].update(master="../../../../etc/passwd"), "images/master"),
    (lambda r: r["images"].update(thumb="sub/thumb.webp"), "images/thumb"),
    (lambda r: r["provenance"].update(weights_sha256="abc"), "weights_sha256"),
    (lambda r: r["results"].update(objective=None), "results/objective"),
    (lambda r: r.update(kind="class"), "kind"),
])
def test_invalid_unit_records_are_named(change, words):
    record = _valid_record()
    assert records.unit_problem(record) is None
    change(record)
    problem = records.unit_problem(record)
    assert problem is not None and words in problem, problem


def test_invalid_manifests_are_named():
    assert records.manifest_problem([1, 2]) is not None
    assert records.manifest_problem({"schema": 1}) is not None
    manifest = records.manifest([_valid_record()], {"source": "embedded", "sha256": "0" * 64, "has_top": False},
                                {}, "2026-11-29T00:00:00Z")
    assert records.manifest_problem(manifest) is None
    assert manifest["layers"]["block2_conv1"]["computed"] == 1 and manifest["layers"]["block2_conv1"]["quality"] is None


def test_reading_an_invalid_record_is_one_line_naming_the_file(tmp_path):
    record = _valid_record()
    write_synthetic_unit(tmp_path, record)
    unit_dir = tmp_path / "vgg16/block2_conv1/5"
    for broken in ('{"schema": 1}', "[1, 2]", "{not json", json.dumps(dict(record, settings=None))):
        (unit_dir / "unit.json").write_text(broken)
        with pytest.raises(records.InvalidRecord) as error:
            store.read_record(unit_dir)
        assert str(unit_dir / "unit.json") in str(error.value) and "\n" not in str(error.value)
        assert not store.is_complete(unit_dir, record["settings"], record["provenance"]["weights_sha256"])


# --- typed options ------------------------------------------------------------------------------


@pytest.mark.parametrize("options, words", [
    (dict(learning_rate=math.inf), "--learning-rate must be a number above 0 and at most 10 (got inf)"),
    (dict(learning_rate=math.nan), "(got nan)"),
    (dict(learning_rate=0.0), "(got 0.0)"),
    (dict(learning_rate=11.0), "(got 11.0)"),
    (dict(size=1), "--size must be at least 8 and at most 1,024 (got 1)"),
    (dict(size=100_000), "(got 100000)"),
    (dict(steps=0), "--steps must be at least 1 and at most 100,000 (got 0)"),
    (dict(steps=100_001), "(got 100001)"),
    (dict(batch_size=0), "--batch-size must be at least 1"),
    (dict(seed=-1), "--seed must be at least 0"),
])
def test_out_of_range_options_are_user_errors(options, words):
    with pytest.raises(UserError, match=re.escape(words)):
        DrawOptions(**options)


def test_plans_follow_the_options():
    full, preview = plan_layer("block5_conv3"), plan_layer("block5_conv3", DrawOptions(quality=Quality.PREVIEW))
    assert (full.settings.size, full.settings.steps) == (160, 256 + 12)  # coarse-to-fine, 12 detail steps in block 5 (docs/QUALITY.md)
    assert (preview.settings.size, preview.settings.steps, preview.settings.detail_size) == (80, 128 + 16, 160)
    assert preview.phases == [(46, 96), (92, 32), (184, 16)]  # coarse at half the side, full, detail at twice
    block1 = plan_layer("block1_conv2")
    assert (block1.settings.coarse_steps, block1.phases) == (0, [(56, 512), (112, 16)])  # no coarse phase: plain + detail
    assert plan_layer(NEURON_LAYER.name).objective is Objective.NEURON
    assert plan_layer("predictions").objective is Objective.CLASS_LOGIT and plan_layer("predictions").input_size == 224
    assert plan_layer("block3_conv1", DrawOptions(steps=7, batch_size=3)).settings.steps == 7 + 7  # + a detail phase as short
    assert plan_layer("block3_conv1", DrawOptions(steps=7, schedule="c2f-256-mirror")).settings.steps == 7
    assert plan_layer("block2_conv1", DrawOptions(steps=7)).settings.steps == 7 + 7
    assert plan_layer("block2_conv1", DrawOptions(steps=100)).settings.detail_steps == 16  # the schedule's
    assert plan_layer("block2_conv1", DrawOptions(steps=7, schedule="plain")).settings.steps == 7
    assert plan_layer(NEURON_LAYER.name).phases == [(15, 512)]  # the neuron keeps its plan
    with pytest.raises(UserError, match="class images have a fixed size"):
        plan_layer("predictions", DrawOptions(size=64))
    settings = plan_layer("block3_conv1").record_settings(12, DrawOptions(precision=Precision.BFLOAT16))
    assert settings["precision"] == "bfloat16" and settings["objective"] == "channel_preact" and settings["seed"] == 12


# --- storage that cannot lie --------------------------------------------------------------------


def test_a_redraw_killed_while_images_are_replaced_leaves_the_unit_incomplete(tmp_path, monkeypatch):
    """A kill after image.webp is replaced must not leave the old record beside the new image."""
    old = _valid_record()
    write_synthetic_unit(tmp_path, old)
    unit_dir = tmp_path / "vgg16/block2_conv1/5"
    new = json.loads(json.dumps(old))
    new["settings"]["size"] = 64

    def die_after_the_master(path, data):
        atomic_write_bytes(path, data)
        raise KeyboardInterrupt  # the kill, right after image.webp is replaced

    monkeypatch.setattr(store, "atomic_write_bytes", die_after_the_master)
    with pytest.raises(KeyboardInterrupt):
        store.write_unit(unit_dir, new, {"image.webp": np.zeros((64, 64, 3), np.uint8)})
    assert store.read_record(unit_dir) is None
    assert not store.is_complete(unit_dir, old["settings"], old["provenance"]["weights_sha256"])


def test_a_master_of_another_size_than_its_record_is_incomplete(tmp_path):
    record = _valid_record()
    write_synthetic_unit(tmp_path, record)
    unit_dir = tmp_path / "vgg16/block2_conv1/5"
    sha = record["provenance"]["weights_sha256"]
    assert store.is_complete(unit_dir, record["settings"], sha)
    side = records.master_side(record["settings"]) + 16
    store.save_image(unit_dir / "image.webp", np.zeros((side, side, 3), np.uint8))
    assert not store.is_complete(unit_dir, record["settings"], sha)


def test_a_detail_master_is_complete_at_the_detail_side_only(tmp_path):
    record = filter_record("block4_conv2", 7, size=16)  # the full defaults: a detail phase at 32 px
    assert record["settings"]["detail"]["size"] == 32 and records.master_side(record["settings"]) == 32
    write_synthetic_unit(tmp_path, record)
    unit_dir = tmp_path / "vgg16/block4_conv2/7"
    sha = record["provenance"]["weights_sha256"]
    assert store.is_complete(unit_dir, record["settings"], sha)
    store.save_image(unit_dir / "image.webp", np.zeros((16, 16, 3), np.uint8))  # the drawing size: not it
    assert not store.is_complete(unit_dir, record["settings"], sha)


def test_stale_temporaries_of_our_own_are_removed_and_nothing_else(tmp_path):
    ours = tmp_path / "vgg16/block1_conv1/3/.image.webp.atlas-k2j4_x9a.tmp"
    ours.parent.mkdir(parents=True)
    ours.write_bytes(b"half")
    theirs = [tmp_path / "vgg16/notes.tmp", tmp_path / "vgg16/.hidden.tmp", tmp_path / "vgg16/block1_conv1/3/x.webp"]
    for path in theirs:
        path.write_bytes(b"keep")
    assert remove_stale_temporaries(tmp_path) == 1
    assert not ours.exists() and all(path.exists() for path in theirs)


def test_a_second_run_on_a_locked_directory_is_refused_naming_the_holder(tmp_path):
    with store.output_lock(tmp_path):
        with pytest.raises(UserError, match=rf"in use by another run \(pid {os.getpid()} on "):
            with store.output_lock(tmp_path):
                pass
    with store.output_lock(tmp_path):  # released: the next run goes ahead
        pass


def test_a_lock_left_by_a_killed_run_does_not_block(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from generator import store\n"
         "with store.output_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(600)", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError, match=f"pid {holder.pid}"):
            with store.output_lock(tmp_path):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with store.output_lock(tmp_path):
        pass


def test_a_manifest_that_did_not_change_keeps_its_bytes(tmp_path):
    from generator.store import update_manifest as write_manifest

    make_small_atlas(tmp_path)
    weights = {"source": "embedded", "sha256": "0" * 64, "has_top": True}
    first = write_manifest(tmp_path, weights, {})
    before = records.manifest_path(tmp_path).read_bytes()
    again = write_manifest(tmp_path, weights, {})
    assert again == first and records.manifest_path(tmp_path).read_bytes() == before
    changed = write_manifest(tmp_path, dict(weights, has_top=False), {})
    assert changed["weights"]["has_top"] is False and records.manifest_path(tmp_path).read_bytes() != before


def test_json_refuses_nan_and_infinity(tmp_path):
    from generator.fileio import atomic_write_json

    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"learning_rate": math.inf})
    assert not (tmp_path / "x.json").exists()

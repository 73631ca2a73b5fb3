"""The distributed build: cost estimates, balanced shards, --plan, --shard auto, and merging shards
back into one atlas that equals a single run."""

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cli_support import assert_bad_input, build, signal_after_first_unit
from generator import cost
from generator.errors import UserError
from generator.planning import wall_hours
from generator.units import parse_shard, select_units

ROOT = Path(__file__).resolve().parents[1]
FULL_ATLAS = dict(layers="block1..block5", classes="all")
SMALL = ["--layers", "block1_conv2,block3_conv1", "--filters", "0:4", "--steps", "3", "--size", "16",
         "--batch-size", "2", "--weights", "embedded", "--no-progress"]


# --- cost and balance -------------------------------------------------------------------------


def test_the_calibration_matches_the_drawing_plan():
    calibration = cost.load_calibration()
    assert calibration["plan"] == cost.plan_fingerprint(), (
        "the drawing plan changed since the cost calibration: rerun bench/calibrate_cost.py on a quiet machine")
    assert set(calibration["seconds_per_gflop"]) == set(cost._all_layers())


def test_forward_flops_known_answers():
    # block1_conv1 at 224 px: 224 * 224 * 9 * 3 * 64 multiply-adds.
    assert cost.forward_flops("block1_conv1", 224) == 2 * 224 * 224 * 9 * 3 * 64
    # VGG16's published 15.5 GFLOP (multiply-adds) for one 224 px image, conv base plus head.
    assert cost.forward_flops("predictions", 224) / 2 == pytest.approx(15.47e9, rel=0.01)


def test_full_atlas_in_64_shards_is_balanced_and_every_unit_is_placed_once():
    units = select_units(**FULL_ATLAS)
    shards = cost.partition(units, 64)
    placed = [unit for shard in shards for item in shard for unit in item.units]
    assert sorted(placed, key=units.index) == units and len(placed) == 5224
    seconds = cost.shard_seconds(shards)
    assert max(seconds) <= 1.1 * (sum(seconds) / len(seconds))


@pytest.mark.parametrize("count", [1, 2, 3, 7, 40])
def test_shards_of_a_small_selection_cover_it_and_none_is_empty_when_units_suffice(count):
    units = select_units(layers="block3_conv1,block5_conv3", filters="0:20")
    shards = [cost.shard_units(units, index, count) for index in range(count)]
    assert sorted(sum(shards, []), key=units.index) == units
    assert all(shards) or count > len(units)


def test_a_units_shard_depends_only_on_the_selection_and_the_count():
    units = select_units(**FULL_ATLAS)
    first = cost.shard_units(units, 5, 64)
    assert cost.shard_units(list(units), 5, 64) == first
    assert cost.shard_units(units, 5, 63) != first


def test_min_shards_is_the_smallest_count_under_the_job_target():
    units = select_units(**FULL_ATLAS)
    smallest = cost.min_shards(units)
    limit = cost.JOB_TARGET_HOURS * 3600 * cost.ASSUMPTIONS["runner_speedup"]
    assert max(cost.shard_seconds(cost.partition(units, smallest))) <= limit
    assert max(cost.shard_seconds(cost.partition(units, smallest - 1))) > limit


def test_wall_hours_on_a_limited_number_of_runners():
    assert wall_hours([3, 3, 3], slots=2) == 6
    assert wall_hours([5, 1, 1, 1, 1, 1], slots=2) == 5
    assert wall_hours([], slots=20) == 0


# --- shard arguments ----------------------------------------------------------------------------


def test_shard_auto_reads_slurm_and_kubernetes_indexes():
    slurm = {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_COUNT": "10"}
    assert parse_shard("auto", environ=slurm) == (5, 10)
    assert parse_shard("auto", shards=10, environ=slurm) == (5, 10)
    assert parse_shard("auto", shards=16, environ={"JOB_COMPLETION_INDEX": "15"}) == (15, 16)
    assert parse_shard("3/4", environ={}) == (3, 4)


@pytest.mark.parametrize("spec, shards, environ, words", [
    ("auto", None, {}, "found no scheduler"),
    ("auto", None, {"JOB_COMPLETION_INDEX": "2"}, "needs --shards N"),
    ("auto", 8, {"JOB_COMPLETION_INDEX": "8"}, "need 0 <= I < N"),
    ("auto", 4, {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "10"}, "disagrees"),
    ("auto", None, {"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "10"}, "whole numbers"),
    ("4/4", None, {}, "need 0 <= I < N"),
    ("²/4", None, {}, "malformed --shard"),
])
def test_bad_shards_are_user_errors(spec, shards, environ, words):
    with pytest.raises(UserError, match=words):
        parse_shard(spec, shards=shards, environ=environ)


# --- the --plan command -------------------------------------------------------------------------


def test_plan_prints_json_without_loading_tensorflow():
    result = build("--layers", "block1..block5", "--classes", "all", "--plan", "--shards", "64", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["units"] == 5224 and report["shards"] == 64 and len(report["shard_runner_hours"]) == 64
    assert report["max_over_mean"] <= 1.1
    assert report["layers"]["predictions"]["units"] == 1000
    assert report["min_shards_under_6h"] >= 1 and report["gpu_hours"] > 0
    assert report["cpu_hours"] == pytest.approx(report["runner_hours"] * cost.ASSUMPTIONS["runner_speedup"], rel=1e-3)
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from generator.cli import main; main(['--layers', 'block5', '--plan']); "
         "print('tensorflow' in sys.modules, file=sys.stderr)"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert probe.stderr.strip().splitlines()[-1] == "False", probe.stderr
    assert "smallest shard count" in probe.stdout


# --- shards and merging, on the real graph -------------------------------------------------------


@pytest.fixture(scope="module")
def three_shards_and_a_single_run(tmp_path_factory, embedded_vgg16):
    work = tmp_path_factory.mktemp("distributed")
    processes = [subprocess.Popen([sys.executable, str(ROOT / "build.py"), *SMALL, "--shard", f"{i}/3", "--out",
                                   str(work / "shards")], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for i in range(3)]
    single = build(*SMALL, "--no-examples", "--out", str(work / "single"))
    assert single.returncode == 0, single.stderr
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    return work


def _images(directory):
    return {path.relative_to(directory): path.read_bytes() for path in directory.rglob("*")
            if path.suffix in (".webp", ".png")}


def _without(record, *keys):
    record = json.loads(json.dumps(record))
    for key in keys:
        record["provenance"].pop(key)
    return record


def test_three_merged_shards_equal_one_run(three_shards_and_a_single_run):
    work = three_shards_and_a_single_run
    shard_dirs = sorted((work / "shards").glob("shard-*"))
    assert [d.name for d in shard_dirs] == ["shard-0", "shard-1", "shard-2"]
    result = build("--merge", *map(str, shard_dirs), "--out", str(work / "merged"), "--weights", "embedded")
    assert result.returncode == 0, result.stderr
    single, merged = work / "single" / "vgg16", work / "merged" / "vgg16"
    assert _images(single) == _images(merged) and len(_images(single)) == 16
    for record_path in single.glob("*/*/unit.json"):
        mine = json.loads(record_path.read_text())
        theirs = json.loads((merged / record_path.relative_to(single)).read_text())
        assert _without(mine, "created", "seconds", "batch_size") == _without(theirs, "created", "seconds", "batch_size")
        assert mine["results"]["robustness"] is not None
    manifests = [json.loads((d / "manifest.json").read_text()) for d in (single, merged)]
    for manifest in manifests:
        manifest.pop("updated")
    assert manifests[0] == manifests[1]


def test_a_merge_with_a_missing_shard_or_unit_names_it_and_touches_nothing(three_shards_and_a_single_run, tmp_path):
    shards = three_shards_and_a_single_run / "shards"
    out = tmp_path / "site_src"
    out.mkdir()
    (out / "notes.md").write_text("mine")
    error = assert_bad_input(build("--merge", str(shards / "shard-0"), str(shards / "shard-2"), "--out", str(out)))
    assert "1 of 3 shards are missing: 1" in error
    broken = tmp_path / "shards"
    shutil.copytree(shards, broken)
    (next((broken / "shard-1").rglob("unit.json"))).unlink()
    error = assert_bad_input(build("--merge", *map(str, sorted(broken.glob("shard-*"))), "--out", str(out)))
    assert "1 units are missing or incomplete, in shards 1" in error
    assert sorted(p.name for p in out.iterdir()) == ["notes.md"]


def test_a_merge_of_shards_drawn_with_other_weights_is_refused(three_shards_and_a_single_run, tmp_path):
    shards = tmp_path / "shards"
    shutil.copytree(three_shards_and_a_single_run / "shards", shards)
    record_path = next((shards / "shard-2").rglob("unit.json"))
    record = json.loads(record_path.read_text())
    record["provenance"]["weights_sha256"] = "f" * 64
    record_path.write_text(json.dumps(record))
    error = assert_bad_input(build("--merge", *map(str, sorted(shards.glob("shard-*"))), "--out", str(tmp_path / "o")))
    assert "drawn with weights ffffffffffff" in error and "the same --weights" in error


def test_a_killed_shard_reruns_only_its_missing_units(tmp_path, embedded_vgg16):
    args = ["--layers", "block1_conv2,block3_conv1", "--filters", "0:6", "--steps", "150", "--size", "16",
            "--batch-size", "1", "--weights", "embedded", "--no-progress", "--shard", "0/2", "--out", str(tmp_path)]
    shard_dir = tmp_path / "shard-0"
    signal_after_first_unit(args, shard_dir, signal.SIGKILL)
    owed = json.loads((shard_dir / "shard.json").read_text())["units"]
    done = len(list(shard_dir.rglob("unit.json")))
    assert 1 <= done < len(owed)
    rerun = build(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resume: {done} of {len(owed)} units already complete" in rerun.stderr
    assert len(list(shard_dir.rglob("unit.json"))) == len(owed)

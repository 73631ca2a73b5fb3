"""Nothing lost, nothing overwritten, every bad input one line: build.py under the failures a user
meets (locked or full output directories, SIGTERM, records of the wrong shape, runs killed
before scoring) and the bad arguments that must be refused before TensorFlow loads."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import assert_bad_input, build, signal_after_first_unit

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--layers", "block1_conv2", "--filters", "0:3", "--steps", "3", "--size", "16", "--weights", "embedded",
        "--no-examples", "--no-progress"]


@pytest.mark.parametrize("args, words", [
    (["--layers", "block1_conv1", "--learning-rate", "inf"], "--learning-rate must be a number above 0"),
    (["--layers", "block1_conv1", "--learning-rate", "nan"], "(got nan)"),
    (["--layers", "block1_conv1", "--size", "1"], "--size must be at least 8"),
    (["--layers", "block1_conv1", "--size", "100000"], "at most 1,024 (got 100000)"),
    (["--layers", "block4_conv2", "--size", "75"], "--size must be even for the detail phase of block4_conv2's"),
    (["--layers", "block5_conv3", "--size", "1024"], "at 1024 px (2048 px in its detail phase) in batches of 8 needs about 106 GiB"),
    (["--layers", "block1_conv1", "--steps", "100001"], "--steps must be at least 1 and at most 100,000"),
    (["--layers", "block1_conv1", "--filters", "²"], "malformed filter selection"),
    (["--layers", "block1_conv1", "--filters", "1:²"], "malformed filter selection"),
    (["--classes", "x" * 100_000], "is 100,000 characters long"),
    (["--classes", "20", "--weights", "embedded"], "class images need the 1,000-class ImageNet head"),
    (["--layers", "block1_conv1", "--weights", "/tmp"], "is a folder"),
    (["--layers", "block1_conv1", "--out", ""], "--out is empty"),
    (["--layers", "block1_conv1", "--steps", "x"], "invalid whole number: 'x'"),
    (["--layers", "block1_conv1", "--size", "١٦"], "invalid whole number"),
    (["--layers", "block1_conv1", "--learning-rate", "٠.٥"], "invalid number"),
    (["--layers", "block1_conv1", "--bogus"], "unrecognized arguments: --bogus"),
    (["--layers", "block1_conv1", "--shard", "auto"], "found no scheduler"),
    (["--plan", "--merge", "x"], "choose one of"),
])
def test_bad_arguments_are_one_line_before_tensorflow(args, words, tmp_path):
    line = assert_bad_input(build(*args) if "--out" in args else build(*args, "--out", str(tmp_path / "out")))
    assert words in line and len(line) < 400
    assert not (tmp_path / "out").exists()


@pytest.fixture
def drawn(tmp_path, embedded_vgg16):
    """A tiny run's output directory (3 units of block1_conv2)."""
    out = tmp_path / "out"
    result = build(*TINY, "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_a_second_run_on_a_locked_output_is_refused_naming_the_holder(drawn):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from generator import store\n"
         "with store.output_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(600)", str(drawn)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        line = assert_bad_input(build(*TINY, "--out", str(drawn)))
        assert f"is in use by another run (pid {holder.pid} on " in line and "another --out" in line
        assert "in use" in assert_bad_input(build("--render-only", "--out", str(drawn)))
    finally:
        holder.kill()
        holder.wait()
    assert build(*TINY, "--out", str(drawn)).returncode == 0  # the kill released the lock


def test_records_of_the_wrong_shape_are_redrawn_and_named_by_render_only(drawn):
    units = sorted((drawn / "vgg16/block1_conv2").glob("*/unit.json"))
    good = json.loads(units[2].read_text())
    units[0].write_text('{"schema": 1}')
    units[1].write_text(json.dumps(dict(good, settings=None)))
    units[2].write_text(json.dumps({**good, "images": {**good["images"], "master": "../../../../etc/passwd"}}))
    line = assert_bad_input(build("--render-only", "--out", str(drawn)))
    assert "unit.json" in line and "delete it, or rerun the drawing" in line
    rerun = build(*TINY, "--out", str(drawn))
    assert rerun.returncode == 0, rerun.stderr
    for path in units:
        record = json.loads(path.read_text())
        assert record["images"]["master"] == "image.webp" and record["settings"]["size"] == 16
    (drawn / "vgg16/manifest.json").write_text("[1, 2]")
    assert "manifest.json" in assert_bad_input(build("--render-only", "--out", str(drawn)))


def test_units_left_unscored_by_a_killed_run_are_scored_on_the_next(drawn):
    path = next((drawn / "vgg16/block1_conv2").glob("*/unit.json"))
    record = json.loads(path.read_text())
    record["results"].update(specificity=None, robustness=None, flat=None, specific=None)
    path.write_text(json.dumps(record))
    rerun = build(*TINY, "--out", str(drawn))
    assert "resume: 3 of 3 units already complete" in rerun.stderr
    assert json.loads(path.read_text())["results"]["robustness"] is not None


def test_a_rerun_that_draws_nothing_leaves_every_file_byte_identical(drawn):
    before = {p: p.read_bytes() for p in drawn.rglob("*") if p.is_file()}
    assert build(*TINY, "--out", str(drawn)).returncode == 0
    after = {p: p.read_bytes() for p in drawn.rglob("*") if p.is_file()}
    assert after == before


def test_sigterm_stops_like_ctrl_c_and_the_rerun_resumes(tmp_path, embedded_vgg16):
    out = tmp_path / "out"
    args = ["--layers", "block1_conv2", "--filters", "0:8", "--batch-size", "1", "--steps", "400", "--size", "16",
            "--weights", "embedded", "--no-examples", "--no-progress", "--out", str(out)]
    code, stderr = signal_after_first_unit(args, out, signal.SIGTERM)
    assert code == 143, stderr
    assert stderr.strip().splitlines()[-1] == "terminated: finished units are saved; rerun the same command to resume"
    assert not list(out.rglob("*.tmp"))
    rerun = build(*args)
    assert rerun.returncode == 0 and "already complete" in rerun.stderr, rerun.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_a_full_disk_is_one_line_and_keeps_every_finished_unit(tmp_path, embedded_vgg16):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], check=True)
    try:
        result = build("--layers", "block1_conv2", "--steps", "2", "--size", "48", "--batch-size", "8",
                       "--weights", "embedded", "--no-examples", "--no-progress", "--out", str(disk))
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
        assert len(errors) == 1 and errors[0] == result.stderr.strip().splitlines()[-1], result.stderr
        assert errors[0].startswith("error: the disk is full") and "rerun the same command to resume" in errors[0]
        records = list(disk.rglob("unit.json"))
        assert records, "some units fit before the disk filled"
        for path in records:
            record = json.loads(path.read_text())
            assert all((path.parent / name).stat().st_size > 0 for name in record["images"].values() if name)
        assert not list(disk.rglob("*.tmp"))
    finally:
        subprocess.run(["umount", str(disk)], check=True)

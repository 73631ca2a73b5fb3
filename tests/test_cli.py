"""build.py end to end: bad input gives one line and exit code 2; runs resume; kills lose nothing."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_support import build
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--steps", "3", "--size", "16", "--no-examples", "--no-progress"]


def error_line(result):
    """The last stderr line, after asserting the run failed with exit code 2 and printed one error."""
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:") or "error: " in line]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--layers", "block6"], "unknown layer 'block6'; did you mean block5"),
        (["--layers", "blok4_conv2"], "did you mean block4_conv2"),
        (["--layers", "block1.."], "malformed layer range"),
        (["--layers", "block5..block1"], "runs backwards"),
        (["--layers", "block1_conv1", "--filters", "64"], "out of range: valid are 0..63"),
        (["--layers", "block1_conv1", "--filters", "a:b"], "malformed filter selection"),
        (["--classes", "water ozel"], "nearest: "),
        (["--shard", "3/2", "--layers", "block1"], "malformed --shard"),
        ([], "nothing to draw"),
        (["--layers", "block1", "--steps", "0"], "--steps must be at least 1"),
    ],
)
def test_bad_selection_is_one_line_and_exit_2(args, expected, tmp_path):
    result = build(*args, "--out", str(tmp_path / "out"))
    assert expected in error_line(result)
    assert not (tmp_path / "out" / "vgg16").exists()


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = build("--layers", "block1_conv1", "--filters", "0", "--out", str(blocker / "out"), *TINY)
    assert "choose another with --out" in error_line(result)


def test_corrupt_weights_file(tmp_path):
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"this is not hdf5")
    result = build("--layers", "block1_conv1", "--filters", "0", "--weights", str(bad),
                   "--out", str(tmp_path / "out"), *TINY)
    assert str(bad.name) in error_line(result)


def test_classes_need_the_imagenet_head(tmp_path):
    result = build("--classes", "20", "--weights", "embedded", "--out", str(tmp_path / "out"), *TINY)
    assert "class images need the 1,000-class ImageNet head" in error_line(result)


def records(out):
    return sorted(Path(out).glob("vgg16/*/*/unit.json"))


def test_run_writes_records_and_manifest_then_resumes(tmp_path):
    out = tmp_path / "site_src"
    args = ["--layers", "block1_conv1,block2_conv1", "--filters", "0:2", "--weights", "embedded", "--out", str(out)]
    first = build(*args, *TINY)
    assert first.returncode == 0, first.stderr
    assert len(records(out)) == 4
    record = json.loads((out / "vgg16/block2_conv1/1/unit.json").read_text())
    assert record["settings"]["steps"] == 3 + 3 and record["settings"]["size"] == 16  # + the detail phase
    assert record["provenance"]["weights_source"] == "embedded"
    assert record["provenance"]["batch_size"] == 2, "a layer's 2 units are one batch of 2, not padded to 32"
    assert record["results"]["flat"] is False
    assert (out / "vgg16/block1_conv1/0/kernel.png").is_file()
    manifest = json.loads((out / "vgg16/manifest.json").read_text())
    assert manifest["layers"]["block2_conv1"]["computed"] == 2
    assert manifest["layers"]["block2_conv1"]["quality"]["units"] == 2
    stamp = (out / "vgg16/block2_conv1/1/image.webp").stat().st_mtime_ns

    again = build(*args, *TINY)
    assert again.returncode == 0, again.stderr
    assert "resume: 4 of 4 units already complete" in again.stderr
    assert (out / "vgg16/block2_conv1/1/image.webp").stat().st_mtime_ns == stamp

    changed = build(*args, "--steps", "4", *TINY[2:])
    assert changed.returncode == 0, changed.stderr
    assert "resume:" not in changed.stderr
    assert json.loads((out / "vgg16/block2_conv1/1/unit.json").read_text())["settings"]["steps"] == 4 + 4


def test_full_defaults_draw_blocks_3_to_5_masters_at_twice_the_side_and_resume_them(tmp_path):
    out = tmp_path / "site_src"
    args = ["--layers", "block3_conv1", "--filters", "0:2", "--weights", "embedded", "--out", str(out)]
    first = build(*args, *TINY)
    assert first.returncode == 0, first.stderr
    record = json.loads((out / "vgg16/block3_conv1/1/unit.json").read_text())
    assert record["settings"]["size"] == 16 and record["settings"]["detail"] == {"size": 32, "steps": 3}
    assert record["settings"]["steps"] == 3 + 3
    with Image.open(out / "vgg16/block3_conv1/1/image.webp") as master:
        assert master.size == (32, 32)
    assert record["results"]["robustness"] is not None  # scored on the area average at 16 px
    again = build(*args, *TINY)
    assert again.returncode == 0, again.stderr
    assert "resume: 2 of 2 units already complete" in again.stderr


# Runs build.py (arguments after OUT and MARKER) and pauses it for good right after the first
# unit record appears under OUT: the rename that publishes it returns, MARKER is created, and the
# process sleeps until the test signals it. The kill point is an event, not a moment, so the test
# behaves the same on a fast or a slow machine.
PAUSE_AFTER_FIRST_RECORD = """
import os, runpy, sys, time
from pathlib import Path

out, marker = Path(sys.argv[1]), Path(sys.argv[2])
sys.argv = ["build.py", *sys.argv[3:]]


def pausing(rename):
    def rename_then_pause(*args, **kwargs):
        rename(*args, **kwargs)
        if not marker.exists() and any(out.glob("vgg16/*/*/unit.json")):
            marker.touch()
            while True:
                time.sleep(60)
    return rename_then_pause


os.replace, os.rename = pausing(os.replace), pausing(os.rename)
runpy.run_path("build.py", run_name="__main__")
"""
KILL_RUN = ["--layers", "block1_conv2", "--filters", "0:8", "--batch-size", "4", "--weights", "embedded",
            "--steps", "40", "--size", "24", "--no-examples", "--no-progress"]


def _ctrl_c_as_in_a_terminal():
    """In the child: SIGINT back to its default, as in a terminal. A suite started in the background
    (`nohup make test &`) inherits SIGINT ignored, and Python then keeps ignoring it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_paused_run(out, marker, stderr=subprocess.DEVNULL):
    """A build.py process (KILL_RUN into `out`), returned once it has paused after its first record."""
    process = subprocess.Popen([sys.executable, "-c", PAUSE_AFTER_FIRST_RECORD, str(out), str(marker), *KILL_RUN,
                                "--out", str(out)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr, text=True,
                               preexec_fn=_ctrl_c_as_in_a_terminal)
    deadline = time.monotonic() + 600  # a guard against a hung run only; the wait ends on the marker
    while not marker.exists():
        assert process.poll() is None, "the run ended before writing its first record"
        assert time.monotonic() < deadline, "no record after 600 s"
        time.sleep(0.1)
    return process


def test_a_killed_run_leaves_no_partial_file_and_the_rerun_completes(tmp_path):
    """SIGKILL just after the first record of a 4-unit batch is published: that unit is complete,
    no temporary file is left, and the rerun resumes it and draws the other 7."""
    out = tmp_path / "site_src"
    process = start_paused_run(out, tmp_path / "paused")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert len(records(out)) == 1
    assert not list(out.rglob("*.tmp")), "a killed run must leave no temporary file"
    for record in records(out):
        assert (record.parent / "image.webp").is_file() and (record.parent / "thumb.webp").is_file()
    rerun = build(*KILL_RUN, "--out", str(out), timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "resume: 1 of 8 units already complete" in rerun.stderr
    assert len(records(out)) == 8


def test_interrupt_exits_130_with_a_resume_hint(tmp_path):
    out = tmp_path / "site_src"
    process = start_paused_run(out, tmp_path / "paused", stderr=subprocess.PIPE)
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=600)  # a guard only: slow under load
    assert process.returncode == 130, stderr
    assert "rerun the same command to resume" in stderr
    assert len(records(out)) == 1


def test_negative_images_minimize_the_unit(tmp_path):
    out = tmp_path / "site_src"
    result = build("--layers", "block2_conv1", "--filters", "5", "--weights", "embedded", "--negative",
                   "--out", str(out), "--steps", "12", "--size", "24", "--no-examples", "--no-progress")
    assert result.returncode == 0, result.stderr
    unit = out / "vgg16/block2_conv1/5"
    record = json.loads((unit / "unit.json").read_text())
    assert record["images"]["negative"] == "negative.webp" and record["settings"]["negative"] is True

    from PIL import Image
    import numpy as np

    from generator.model import load_vgg16, preprocess
    from generator.optvis.objectives import layer_scores
    from generator.optvis.transform import frame
    from generator.plan import DrawOptions, plan_layer

    scores = layer_scores(load_vgg16("embedded").model, "block2_conv1", preprocess)
    pad = plan_layer("block2_conv1", DrawOptions(size=24)).settings.transforms.pad
    pictures = np.stack([np.asarray(Image.open(unit / name).convert("RGB")) for name in ("image.webp", "negative.webp")])
    positive, negative = scores(frame(pictures.astype(np.float32) / 255.0, pad)).numpy()[:, 5]
    assert positive > 0 > negative


def test_a_preview_keeps_units_drawn_at_the_full_defaults_but_not_the_reverse(tmp_path):
    out = tmp_path / "site_src"
    args = ["--layers", "block2_conv1", "--filters", "0:2", "--weights", "embedded", "--out", str(out), *TINY]
    assert build(*args, "--quality", "full").returncode == 0
    full = json.loads((out / "vgg16/block2_conv1/1/unit.json").read_text())
    preview = build(*args, "--quality", "preview")
    assert preview.returncode == 0, preview.stderr
    assert "resume: 2 of 2 units already complete" in preview.stderr
    assert json.loads((out / "vgg16/block2_conv1/1/unit.json").read_text()) == full

    fresh = tmp_path / "fresh"
    assert build(*args[:-len(TINY) - 2], "--out", str(fresh), *TINY, "--quality", "preview").returncode == 0
    upgraded = build(*args[:-len(TINY) - 2], "--out", str(fresh), *TINY, "--quality", "full")
    assert upgraded.returncode == 0 and "resume:" not in upgraded.stderr  # a full run redraws preview units

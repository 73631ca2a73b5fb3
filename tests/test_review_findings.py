"""Defects found by the review of issue 8 ("Nothing lost, nothing overwritten"), repeated on main.

Each test is named after one defect and fails on the code it was written against. Most run the
CLI in-process with the model loader replaced by a tripwire: a bad argument must be refused
(exit 2, one line) before any model is loaded, so reaching the loader is the failure. They import
no TensorFlow, except the one subprocess test of --examples-only.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from generator import cli
from generator.synthetic import make_small_atlas

ROOT = Path(__file__).resolve().parents[1]
SELECTION = ["--weights", "embedded", "--layers", "block1_conv2", "--filters", "0:4", "--steps", "3",
             "--size", "16", "--no-progress"]


class ModelLoaded(Exception):
    """Raised by the tripwire loader: the CLI got as far as loading a model."""


@pytest.fixture
def tripwire(monkeypatch):
    """cli.load_model replaced by one that raises ModelLoaded (no TensorFlow import)."""

    def load_model(*_args, **_kwargs):
        raise ModelLoaded

    monkeypatch.setattr(cli, "load_model", load_model)


def one_error_line(capsys):
    """The single stderr line of a refused run (asserts there is exactly one, starting "error:")."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    return lines[0]


def test_huge_top_k_is_refused_before_drawing_not_a_numpy_traceback_after_it(tripwire, tmp_path, capsys):
    # Found: `--top-k 99999999999999999999` draws the units, then dies in the saliency stage with
    # "ValueError: Maximum allowed dimension exceeded" (traceback, exit 1).
    code = cli.main([*SELECTION, "--top-k", "9" * 20, "--out", str(tmp_path / "out")])
    assert code == 2
    assert "--top-k" in one_error_line(capsys)


def test_plan_with_huge_shard_count_is_one_line_not_an_overflow_traceback(capsys):
    # Found: `--plan --shards 99999999999999999999` raises OverflowError in cost.partition
    # (traceback, exit 1); `--plan --shards 100000` is accepted although --shard caps N.
    code = cli.main(["--layers", "block1_conv2", "--plan", "--shards", "9" * 20])
    assert code == 2
    assert "--shards" in one_error_line(capsys)


def test_empty_shard_is_refused_not_silently_ignored(tripwire, tmp_path, capsys):
    # Found: `--shard ""` is treated as no --shard at all: the whole selection is drawn into
    # --out (not OUT/shard-I/), pages rendered, exit 0.
    code = cli.main([*SELECTION, "--no-examples", "--shard", "", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "--shard" in one_error_line(capsys)


def test_empty_filters_is_refused_not_read_as_every_filter(tripwire, tmp_path, capsys):
    # Found: `--filters ""` selects all 64 filters of block1_conv2 (drawn for 52 s here), while
    # `--layers ""` is refused as empty.
    argv = ["--weights", "embedded", "--layers", "block1_conv2", "--filters", "", "--steps", "3", "--size", "16",
            "--no-progress", "--no-examples", "--out", str(tmp_path / "out")]
    code = cli.main(argv)
    assert code == 2
    assert "filter" in one_error_line(capsys)


def test_empty_images_is_refused_not_read_as_the_current_folder(tripwire, tmp_path, monkeypatch, capsys):
    # Found: `--images ""` is Path("") = the current folder, searched recursively: run from the
    # repository it takes every .webp of site_src/ as an example photo (saliency ran > 120 s).
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (32, 32), (200, 10, 10)).save(tmp_path / "photo.png")
    code = cli.main([*SELECTION, "--images", "", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "--images" in one_error_line(capsys)


def test_no_builtin_images_without_images_is_refused_before_the_model_loads(tripwire, tmp_path, capsys):
    # Found: `--no-builtin-images` without `--images` draws every unit first, then says
    # "no example photos" after TensorFlow loaded (5 lines on stderr, 8.6 s).
    code = cli.main([*SELECTION, "--no-builtin-images", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "photo" in one_error_line(capsys)


def test_truncated_hdf5_weights_are_refused_before_the_output_directory_is_made(tripwire, tmp_path, capsys):
    # Found: a weights file holding only the HDF5 signature passes h5py.is_hdf5, so it is refused
    # only after TensorFlow loads (2.8 s), and --out has been created with a .atlas.lock in it.
    weights = tmp_path / "truncated.h5"
    weights.write_bytes(b"\x89HDF\r\n\x1a\n")
    out = tmp_path / "out"
    argv = ["--weights", str(weights), "--layers", "block1_conv2", "--filters", "0:4", "--steps", "3",
            "--size", "16", "--no-progress", "--no-examples", "--out", str(out)]
    code = cli.main(argv)
    assert code == 2
    assert str(weights) in one_error_line(capsys)
    assert not out.exists()


def test_examples_only_on_an_output_without_units_is_one_line_without_tensorflow_logs(tmp_path):
    # Found: `--examples-only --out EMPTY_DIR` (and --examples-only into a locked --out) imports
    # TensorFlow unsilenced: absl/oneDNN lines, 7 lines on stderr in all, about 10 s.
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run([sys.executable, str(ROOT / "build.py"), "--examples-only", "--weights", "embedded",
                             "--no-progress", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), lines


def test_render_only_keeps_hand_written_pages_in_the_tools_folders(tmp_path):
    # Found: `--render-only` removes OUT/vgg16/notes/index.md and OUT/examples/tutorial/index.md,
    # pages the tool never wrote (RenderStats removed=2).
    from generator.site import render_site

    make_small_atlas(tmp_path)
    render_site(tmp_path)
    mine = {tmp_path / "vgg16" / "notes" / "index.md": b"layer notes\n",
            tmp_path / "examples" / "tutorial" / "index.md": b"tutorial\n"}
    for path, data in mine.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    render_site(tmp_path)
    for path, data in mine.items():
        assert path.is_file() and path.read_bytes() == data, path


def test_rendering_does_not_overwrite_a_hand_written_index_md(tmp_path):
    # Found: a user's OUT/index.md and OUT/methods.md, there before the first run, are replaced by
    # the generated pages without a word (a drawing run and --render-only alike).
    from generator.errors import UserError
    from generator.site import render_site

    make_small_atlas(tmp_path)
    (tmp_path / "index.md").write_bytes(b"my home\n")
    try:
        render_site(tmp_path)
    except UserError as error:
        assert "index.md" in str(error)
        return
    assert (tmp_path / "index.md").read_bytes() == b"my home\n"


def test_render_only_refuses_a_record_with_nan(tmp_path, capsys):
    # Found: a unit.json with `"learning_rate": NaN` passes the schema check (Python's json reads
    # NaN, a JSON-Schema number accepts it): --render-only exits 0, the page shows "nan" and the
    # published unit.json is not JSON a browser can parse.
    make_small_atlas(tmp_path)
    path = next((tmp_path / "vgg16" / "block1_conv2").glob("*/unit.json"))
    record = json.loads(path.read_text())
    record["settings"]["learning_rate"] = float("nan")
    path.write_text(json.dumps(record))
    code = cli.main(["--render-only", "--out", str(tmp_path)])
    assert code == 2
    assert "unit.json" in one_error_line(capsys)


def _write_shard_json(shard_dir, **fields):
    """A shard.json like `build.py --shard` writes, with `fields` replaced."""
    document = {"schema": 1, "shard": 0, "shards": 2, "selection": "5137b35d3c2d614f", "selection_units": 2,
                "options": {"quality": "full", "size": 16, "steps": 3, "learning_rate": None, "batch_size": 1,
                            "seed": 0, "precision": "float32", "negative": False, "resume": True},
                "units": ["block1_conv2/0"]}
    document.update(fields)
    shard_dir.mkdir(parents=True)
    (shard_dir / "shard.json").write_text(json.dumps(document))


def test_merge_of_a_shard_json_with_a_string_index_is_one_line_not_a_type_error(tripwire, tmp_path, capsys):
    # Found: shard.json {"shard": "0"} beside a good shard-1 makes --merge crash with
    # "TypeError: '<' not supported between instances of 'int' and 'str'" (traceback, exit 1);
    # "shards": "2" or 1e30 give "TypeError: ... cannot be interpreted as an integer".
    _write_shard_json(tmp_path / "shard-0", shard="0")
    _write_shard_json(tmp_path / "shard-1", shard=1, units=["block1_conv2/1"])
    code = cli.main(["--weights", "embedded", "--no-progress", "--merge", str(tmp_path / "shard-0"),
                     str(tmp_path / "shard-1"), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "shard.json" in one_error_line(capsys)


@pytest.mark.parametrize("shards", [-1, True, 0])
def test_merge_refuses_a_shard_json_whose_shard_count_is_not_a_positive_integer(shards, tripwire, tmp_path, capsys):
    # Found: with "shards": -1 (or true) in shard.json, the missing-shards check is empty, so
    # `--merge OUT/shard-0` alone merges half the selection (3 of 6 units), exit 0.
    _write_shard_json(tmp_path / "shard-0", shards=shards)
    code = cli.main(["--weights", "embedded", "--no-progress", "--merge", str(tmp_path / "shard-0"),
                     "--out", str(tmp_path / "out")])
    assert code == 2
    assert "shard.json" in one_error_line(capsys)


@pytest.mark.parametrize("option", ["--weights", "--images"])
def test_a_path_option_with_a_too_long_name_is_one_line_not_an_oserror_traceback(option, tripwire, tmp_path, capsys):
    # Found: `--weights /tmp/<300 x "a">.h5` and `--images /tmp/<300 x "a">` raise
    # "OSError: [Errno 36] File name too long" from Path.is_dir (traceback, exit 1).
    too_long = str(tmp_path / ("a" * 300))
    argv = ["--layers", "block1_conv2", "--filters", "0:4", "--steps", "3", "--size", "16", "--no-progress",
            "--weights", "embedded", option, too_long, "--out", str(tmp_path / "out")]
    code = cli.main(argv)
    assert code == 2
    assert one_error_line(capsys).startswith("error:")


def test_render_only_with_a_too_long_out_is_one_line_not_an_oserror_traceback(tmp_path, capsys):
    # Found: `--render-only --out /tmp/<300 x "a">` raises "OSError: [Errno 36] File name too
    # long" from Path.is_dir (traceback, exit 1).
    code = cli.main(["--render-only", "--out", str(tmp_path / ("a" * 300))])
    assert code == 2
    assert one_error_line(capsys).startswith("error:")


def test_json_without_plan_is_refused_not_ignored(tripwire, tmp_path, capsys):
    # Found: `--json` without `--plan` is silently ignored and the selection is drawn (37 s here,
    # exit 0), while `--shards` without --plan/--shard auto is refused.
    code = cli.main([*SELECTION, "--no-examples", "--json", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "--json" in one_error_line(capsys)


def test_stale_temporary_clean_up_spares_a_users_file_of_the_same_shape(tmp_path):
    # Found: taking the output lock deletes every file below --out named like ".X.XXXXXXXX.tmp",
    # e.g. a user's OUT/notes/.draft.abcd1234.tmp, not only the temporaries this tool made.
    from generator import store

    mine = tmp_path / "notes" / ".draft.abcd1234.tmp"
    mine.parent.mkdir()
    mine.write_bytes(b"my draft\n")
    with store.output_lock(tmp_path):
        pass
    assert mine.read_bytes() == b"my draft\n"

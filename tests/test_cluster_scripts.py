"""The scripts behind the Atlas workflow (scripts/atlas/), run locally: known answers for the
selection and the shard matrix, the exact commands of a shard and a merge (--dry-run), the photo
tarball, the release, the choice of the atlas data Pages publishes and the Tests gate (GitHub's
answers read from files). Bad input is one line on stderr and exit 2 everywhere. The end-to-end
plan through build.py runs once build.py has --plan."""

import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from cli_support import assert_bad_input

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts" / "atlas"
SHA = "0123456789abcdef0123456789abcdef01234567"
PYTHON_SCRIPTS = {"plan-matrix", "fetch-photos", "latest-release-data", "tests-passed"}


def script(name, *args, env=None, cwd=ROOT):
    """CompletedProcess of scripts/atlas/NAME (Python ones under this interpreter)."""
    command = [sys.executable, str(SCRIPTS / name)] if name in PYTHON_SCRIPTS else [str(SCRIPTS / name)]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, timeout=60, cwd=cwd,
                          env={**os.environ, **(env or {})})


def outputs(stdout):
    """{name: value} of GITHUB_OUTPUT lines."""
    return dict(line.split("=", 1) for line in stdout.splitlines())


def test_every_script_is_executable_and_has_a_usage_line():
    names = sorted(path.name for path in SCRIPTS.iterdir() if path.name != "lib.sh")
    assert names == ["fetch-photos", "latest-release-data", "merge", "plan-matrix", "release", "run-shard",
                     "selection", "tests-passed"]
    for name in names:
        assert os.access(SCRIPTS / name, os.X_OK), name
        result = script(name, "--help")
        assert result.returncode == 0 and f"usage: scripts/atlas/{name}" in result.stdout, (name, result.stderr)


# --- selection: the workflow's inputs -> build.py's flags ------------------------------------------

@pytest.mark.parametrize("what, quality, flags", [
    ("filters", "full", "--layers block1..block5 --quality full"),
    ("classes", "preview", "--classes all --quality preview"),
    ("both", "full", "--layers block1..block5 --classes all --quality full"),
])
def test_selection_known_answers(what, quality, flags):
    result = script("selection", what, quality)
    assert result.returncode == 0 and result.stdout == flags + "\n"


@pytest.mark.parametrize("args, words", [
    (("all", "full"), ("'all'", "filters, classes or both")),
    (("both", "draft"), ("'draft'", "preview or full")),
    (("both",), ("expected 2 arguments",)),
])
def test_selection_refuses_bad_input(args, words):
    assert_bad_input(script("selection", *args), *words)


# --- plan-matrix: the plan -> the shard matrix ----------------------------------------------------

def plan(shards=4, hours=(2.0, 1.9, 1.9, 1.8), minimum=4):
    """A `build.py --plan --json` object of the documented schema."""
    return {"units": 5224, "layers": {"block1_conv1": {"units": 64, "cpu_hours": 0.1},
                                      "predictions": {"units": 1000, "cpu_hours": 30.0}},
            "cpu_hours": 107.0, "runner_hours": sum(hours), "gpu_hours": 1.2, "shards": shards,
            "shard_runner_hours": list(hours), "max_over_mean": 1.05, "min_shards_under_6h": minimum}


def plan_matrix(tmp_path, plan_object, *args):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan_object))
    return script("plan-matrix", "--what", "both", "--quality", "full", "--plan-json", path, *args)


def test_plan_matrix_known_answer(tmp_path):
    result = plan_matrix(tmp_path, plan(), "--shards", "4")
    assert result.returncode == 0, result.stderr
    values = outputs(result.stdout)
    assert list(values) == ["flags", "shards", "matrix", "cache_key", "runner_hours", "max_shard_hours", "wall_hours"]
    assert values["flags"] == "--layers block1..block5 --classes all --quality full"
    assert values["shards"] == "4"
    assert json.loads(values["matrix"]) == {"include": [
        {"shard": 0, "hours": 2.0}, {"shard": 1, "hours": 1.9}, {"shard": 2, "hours": 1.9}, {"shard": 3, "hours": 1.8}]}
    assert values["cache_key"].startswith("atlas-both-full-imagenet-n4-") and len(values["cache_key"]) == 40
    assert (values["runner_hours"], values["max_shard_hours"], values["wall_hours"]) == ("7.6", "2.00", "2.00")


@pytest.mark.parametrize("shards", ["0", "", " 0 "])
def test_plan_matrix_takes_the_plans_smallest_count_when_shards_is_0_or_empty(tmp_path, shards):
    result = plan_matrix(tmp_path, plan(), "--shards", shards)
    assert result.returncode == 0, result.stderr
    assert outputs(result.stdout)["shards"] == "4"


def test_plan_matrix_wall_time_at_20_jobs(tmp_path):
    """30 one-hour shards on 20 runners: two rounds."""
    result = plan_matrix(tmp_path, plan(30, [1.0] * 30, 12), "--shards", "30")
    values = outputs(result.stdout)
    assert (values["runner_hours"], values["wall_hours"]) == ("30.0", "2.00")
    result = plan_matrix(tmp_path, plan(30, [1.0] * 30, 12), "--shards", "30", "--concurrency", "30")
    assert outputs(result.stdout)["wall_hours"] == "1.00"


def test_plan_matrix_cache_key_follows_the_plan_and_weights(tmp_path):
    keys = {outputs(plan_matrix(tmp_path, plan_object, *args).stdout)["cache_key"]
            for plan_object, args in [(plan(), ()), (plan(hours=(2.0, 1.9, 1.8, 1.8)), ()),
                                      (plan(), ("--weights", "auto"))]}
    assert len(keys) == 3


def test_plan_matrix_writes_a_summary(tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier\n")
    plan_matrix(tmp_path, plan(), "--summary", summary)
    text = summary.read_text()
    assert text.startswith("earlier\n### Atlas plan")
    for row in ("| units | 5224 |", "| runner-hours (4-vCPU runner) | 7.6 |", "| costliest shard | 2.00 h (1.05 x the mean) |",
                "| drawing wall time at 20 jobs | 2.00 h |", "| predictions | 1000 | 30.0 |"):
        assert row in text


@pytest.mark.parametrize("plan_object, args, words", [
    (plan(), ("--shards", "8"), ("plans 4 shards, not 8",)),
    (plan(), ("--shards", "x"), ("whole number", "'x'")),
    (plan(), ("--shards", "-1"), ("whole number",)),
    (plan(), ("--shards", "257"), ("256 jobs",)),
    (plan(hours=(5.6, 1, 1, 1)), (), ("shard 0 of 4", "5.6 h", "5.5 h budget")),
    (plan(), ("--budget-hours", "1.95"), ("shard 0 of 4", "2.0 h")),
    ({"units": 1}, (), ("lacks cpu_hours",)),
    (plan(shards=5), ("--shards", "5"), ("4 shard estimates for 5 shards",)),
    (plan(), ("--weights", "embedded"), ("ImageNet head",)),
    (plan(), ("--weights", "no/such.weights.h5"), ("not auto, imagenet, embedded or a file",)),
    (plan(), ("--concurrency", "0"), ("--concurrency",)),
])
def test_plan_matrix_refuses_bad_input(tmp_path, plan_object, args, words):
    assert_bad_input(plan_matrix(tmp_path, plan_object, *args), *words)


def test_plan_matrix_refuses_a_bad_selection_and_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text("not json")
    assert_bad_input(script("plan-matrix", "--what", "both", "--quality", "full", "--plan-json", path), "is not JSON")
    assert_bad_input(script("plan-matrix", "--what", "layers", "--quality", "full", "--plan-json", path), "'layers'")
    assert_bad_input(script("plan-matrix", "--quality", "full"), "--what")


def test_plan_matrix_embedded_weights_draw_filters(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan()))
    result = script("plan-matrix", "--what", "filters", "--quality", "preview", "--weights", "embedded", "--plan-json", path)
    assert result.returncode == 0, result.stderr
    assert outputs(result.stdout)["cache_key"].startswith("atlas-filters-preview-embedded-n4-")


def build_py_has_plan():
    help_text = subprocess.run([sys.executable, "build.py", "--help"], capture_output=True, text=True, cwd=ROOT).stdout
    return "--plan" in help_text


@pytest.mark.skipif(not build_py_has_plan(), reason="build.py --plan is being built (issue 9); runs once it exists")
@pytest.mark.parametrize("what", ["filters", "classes", "both"])
def test_plan_matrix_end_to_end_through_build_py(what):
    """The real plan: --shards 0 gives the plan's smallest count under 6 h, every shard within the
    5.5 h budget; for the full atlas at N = 64 the costliest shard is at most 1.1 x the mean."""
    flags = script("selection", what, "full").stdout.split()
    direct = subprocess.run([sys.executable, "build.py", *flags, "--plan", "--json", "--shards", "64"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert direct.returncode == 0, direct.stderr
    plan64 = json.loads(direct.stdout)
    assert plan64["shards"] == 64 and len(plan64["shard_runner_hours"]) == 64
    if what == "both":
        assert plan64["units"] == 5224 and plan64["max_over_mean"] <= 1.1
    result = script("plan-matrix", "--what", what, "--quality", "full", "--shards", "0",
                    env={"PYTHON": sys.executable})
    assert result.returncode == 0, result.stderr
    values = outputs(result.stdout)
    assert int(values["shards"]) == plan64["min_shards_under_6h"]
    matrix = json.loads(values["matrix"])["include"]
    assert [entry["shard"] for entry in matrix] == list(range(int(values["shards"])))
    assert max(entry["hours"] for entry in matrix) <= 5.5


# --- run-shard and merge: the exact commands ------------------------------------------------------

def test_run_shard_command():
    result = script("run-shard", "--what", "both", "--quality", "full", "--shard", "3", "--shards", "16", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("python3 build.py --layers block1..block5 --classes all --quality full "
                             "--weights imagenet --shard 3/16 --out shards --no-progress\n")
    result = script("run-shard", "--what", "classes", "--quality", "preview", "--shard", "0", "--shards", "1",
                    "--weights", "my weights.h5", "--out", "/tmp/s", "--dry-run", env={"PYTHON": "/opt/py"})
    assert result.stdout == ("/opt/py build.py --classes all --quality preview "
                             "--weights my\\ weights.h5 --shard 0/1 --out /tmp/s --no-progress\n")


def fake_python(tmp_path, exit_code):
    """A stand-in interpreter that records its arguments and exits with exit_code."""
    record = tmp_path / "argv"
    fake = tmp_path / "fake-python"
    fake.write_text(f'#!/bin/sh\necho "$@" > "{record}"\nexit {exit_code}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return fake, record


def test_run_shard_runs_build_py_from_the_repository_root_and_passes_its_exit_code(tmp_path):
    fake, record = fake_python(tmp_path, 130)
    result = script("run-shard", "--what", "filters", "--quality", "full", "--shard", "1", "--shards", "2",
                    env={"PYTHON": str(fake)}, cwd=tmp_path)
    assert result.returncode == 130
    assert record.read_text() == ("build.py --layers block1..block5 --quality full --weights imagenet "
                                  "--shard 1/2 --out shards --no-progress\n")


@pytest.mark.parametrize("args, words", [
    (("--shard", "16", "--shards", "16"), ("not below --shards 16",)),
    (("--shard", "0", "--shards", "0"), ("--shards must be at least 1",)),
    (("--shard", "a", "--shards", "4"), ("--shard must be a whole number",)),
    (("--shard", "0", "--shards", "4", "--bogus"), ("unknown argument '--bogus'", "usage:")),
    (("--shard",), ("--shard needs a value",)),
])
def test_run_shard_refuses_bad_input(args, words):
    assert_bad_input(script("run-shard", "--dry-run", "--what", "both", "--quality", "full", *args), *words)


def shard_dirs(tmp_path, count):
    shards = tmp_path / "shards"
    for index in range(count):
        (shards / f"shard-{index}").mkdir(parents=True)
    return shards


def test_merge_commands(tmp_path):
    shards = shard_dirs(tmp_path, 3)
    photos = tmp_path / "photos"
    photos.mkdir()
    result = script("merge", "--shards", "3", "--from", shards, "--weights", "imagenet", "--images", photos,
                    "--fresh-out", "--tarball", tmp_path / "site_src.tar.gz", "--dry-run")
    assert result.returncode == 0, result.stderr
    s, t = shards, tmp_path / "site_src.tar.gz"
    assert result.stdout.splitlines() == [
        "rm -rf site_src",
        f"python3 build.py --merge {s}/shard-0 {s}/shard-1 {s}/shard-2 --out site_src",
        f"python3 build.py --examples-only --weights imagenet --out site_src --no-progress --images {photos}",
        "python3 -m mkdocs build --strict",
        f"tar -czf {t}.partial site_src",
        f"mv {t}.partial {t}",
    ]


def test_merge_without_photos_uses_the_bundled_ones(tmp_path):
    result = script("merge", "--shards", "1", "--from", shard_dirs(tmp_path, 1), "--images", "", "--fresh-out",
                    "--dry-run", env={"PYTHON": "py"})
    assert "py build.py --examples-only --weights imagenet --out site_src --no-progress" in result.stdout.splitlines()


def test_merge_refuses_missing_or_foreign_shards_and_keeps_a_filled_site_src(tmp_path):
    shards = shard_dirs(tmp_path, 3)
    (shards / "shard-1").rmdir()
    assert_bad_input(script("merge", "--shards", "3", "--from", shards, "--fresh-out", "--dry-run"),
                     "1 of 3 shard directories missing", "shard-1")
    (shards / "shard-1").mkdir()
    (shards / "shard-5").mkdir()
    assert_bad_input(script("merge", "--shards", "3", "--from", shards, "--fresh-out", "--dry-run"),
                     "shard-5 does not belong to a run of 3 shards")
    (shards / "shard-5").rmdir()
    assert (ROOT / "site_src" / "vgg16").is_dir(), "the committed preview is there"
    assert_bad_input(script("merge", "--shards", "3", "--from", shards, "--dry-run"), "site_src is not empty", "--fresh-out")
    assert_bad_input(script("merge", "--shards", "3", "--from", tmp_path / "none", "--dry-run"), "no shard directory")
    assert_bad_input(script("merge", "--shards", "3", "--from", shards, "--images", tmp_path / "none", "--dry-run"),
                     "is not a folder")
    assert_bad_input(script("merge", "--from", shards), "--shards must be at least 1")


# --- fetch-photos ---------------------------------------------------------------------------------

def add_member(archive, name, data=b"x", kind=tarfile.REGTYPE, target=""):
    import io

    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, target, len(data) if kind == tarfile.REGTYPE else 0
    archive.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def test_fetch_photos_extracts_only_photos_flat_into_the_folder(tmp_path):
    tarball = tmp_path / "photos.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        add_member(archive, "set/cats/01.JPG", b"cat")
        add_member(archive, "dog.webp", b"dog")
        add_member(archive, "../escape.png", b"out")
        add_member(archive, "notes.txt", b"text")
        add_member(archive, "link.jpg", kind=tarfile.SYMTYPE, target="/etc/passwd")
    result = script("fetch-photos", tarball, tmp_path / "photos")
    assert result.returncode == 0, result.stderr
    files = {path.name: path.read_bytes() for path in (tmp_path / "photos").iterdir()}
    assert files == {"set-cats-01.JPG": b"cat", "dog.webp": b"dog", "escape.png": b"out"}
    assert not (tmp_path / "escape.png").exists()
    assert "3 photos" in result.stderr


def test_fetch_photos_refuses_bad_input(tmp_path):
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w") as archive:
        add_member(archive, "readme.txt")
    assert_bad_input(script("fetch-photos", empty, tmp_path / "a"), "holds no jpg, png or webp")
    assert_bad_input(script("fetch-photos", "http://example.org/p.tgz", tmp_path / "b"), "only https")
    assert_bad_input(script("fetch-photos", tmp_path / "none.tgz", tmp_path / "c"), "neither an https URL nor a file")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    assert_bad_input(script("fetch-photos", empty, tmp_path / "full"), "not an empty folder")
    (tmp_path / "junk.tgz").write_bytes(b"not a tarball")
    assert_bad_input(script("fetch-photos", tmp_path / "junk.tgz", tmp_path / "d"), "not a readable tarball")


# --- release --------------------------------------------------------------------------------------

def release(tmp_path, *args):
    tarball = tmp_path / "site_src.tar.gz"
    tarball.write_bytes(b"")
    return script("release", "--tag", "atlas-42", "--tarball", tarball, "--repo", "owner/atlas", "--target", SHA,
                  "--notes", "Drawn by RUN", "--dry-run", *args)


def test_release_marks_the_complete_atlas_latest_and_a_partial_run_prerelease(tmp_path):
    complete = release(tmp_path, "--what", "both", "--quality", "full")
    assert complete.returncode == 0, complete.stderr
    assert complete.stdout.startswith(f"gh release create atlas-42 {tmp_path}/site_src.tar.gz --repo owner/atlas "
                                      f"--target {SHA} --latest --title ")
    assert "--notes build.py\\ --layers\\ block1..block5\\ --classes\\ all\\ --quality\\ full.\\ Drawn\\ by\\ RUN" in complete.stdout
    for what, quality in (("filters", "full"), ("both", "preview")):
        partial = release(tmp_path, "--what", what, "--quality", quality)
        assert " --prerelease " in partial.stdout and "--latest" not in partial.stdout


def test_release_refuses_bad_input(tmp_path):
    assert_bad_input(release(tmp_path, "--what", "both", "--quality", "full", "--tag", "v1"), "atlas-ID")
    assert_bad_input(release(tmp_path, "--what", "both", "--quality", "full", "--target", "main"), "full commit sha")
    assert_bad_input(release(tmp_path, "--what", "both", "--quality", "full", "--tarball", tmp_path / "none"), "no tarball")
    assert_bad_input(release(tmp_path, "--what", "most", "--quality", "full"), "'most'")


# --- latest-release-data: what Pages publishes -----------------------------------------------------

def releases_file(tmp_path, *releases):
    path = tmp_path / "releases.json"
    path.write_text(json.dumps([
        {"tag_name": tag, "draft": draft, "prerelease": prerelease, "created_at": f"2026-11-{day:02d}T00:00:00Z",
         "assets": [{"name": asset}]}
        for tag, day, prerelease, draft, asset in releases]))
    return path


def choose(tmp_path, *releases):
    result = script("latest-release-data", "--repo", "owner/atlas", "--releases-json", releases_file(tmp_path, *releases),
                    "--dry-run")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_latest_release_data_prefers_the_newest_complete_atlas(tmp_path):
    ok = "site_src.tar.gz"
    assert choose(tmp_path, ("atlas-3", 3, True, False, ok), ("atlas-2", 2, False, False, ok),
                  ("atlas-1", 1, False, False, ok), ("v9", 9, False, False, ok),
                  ("atlas-8", 8, False, True, ok), ("atlas-7", 7, False, False, "other.zip")) == "tag=atlas-2\n"
    assert choose(tmp_path, ("atlas-1", 1, True, False, ok), ("atlas-4", 4, True, False, ok)) == "tag=atlas-4\n"
    assert choose(tmp_path) == "tag=\n", "no atlas release: the committed preview"
    assert choose(tmp_path, ("v1", 1, False, False, ok)) == "tag=\n"


def test_latest_release_data_dry_run_names_the_download(tmp_path):
    result = script("latest-release-data", "--repo", "owner/atlas", "--tag", "atlas-5", "--dry-run")
    assert result.stdout == "tag=atlas-5\n"
    assert "gh release download atlas-5 --repo owner/atlas --pattern site_src.tar.gz" in result.stderr
    preview = script("latest-release-data", "--repo", "owner/atlas", "--tag", "preview")
    assert preview.returncode == 0 and preview.stdout == "tag=\n"


def asset(tmp_path, members):
    path = tmp_path / "asset.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for member in members:
            add_member(archive, *member)
    return path


def test_latest_release_data_replaces_site_src_with_the_asset(tmp_path):
    dest = tmp_path / "site_src"
    (dest / "vgg16").mkdir(parents=True)
    (dest / "vgg16" / "preview.json").write_text("preview")
    path = asset(tmp_path, [("site_src/vgg16/block1_conv1/0/unit.json", b"{}"), ("site_src/examples/a.webp", b"w")])
    result = script("latest-release-data", "--repo", "owner/atlas", "--tag", "atlas-5", "--asset", path, "--dest", dest)
    assert result.returncode == 0 and result.stdout == "tag=atlas-5\n", result.stderr
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == [
        "examples/a.webp", "vgg16/block1_conv1/0/unit.json"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".release-")] == []


@pytest.mark.parametrize("members, words", [
    ([("site_src/a", b"x"), ("evil/b", b"x")], ("'evil/b'", "outside site_src/")),
    ([("site_src/../../x", b"x")], ("outside site_src/",)),
    ([("site_src/link", b"", tarfile.SYMTYPE, "/etc/passwd")], ("not a file or folder",)),
])
def test_latest_release_data_refuses_a_malformed_asset_and_keeps_site_src(tmp_path, members, words):
    dest = tmp_path / "site_src"
    dest.mkdir()
    (dest / "keep.txt").write_text("kept")
    result = script("latest-release-data", "--repo", "owner/atlas", "--tag", "atlas-5",
                    "--asset", asset(tmp_path, members), "--dest", dest)
    assert_bad_input(result, *words)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_latest_release_data_refuses_bad_input(tmp_path):
    assert_bad_input(script("latest-release-data", "--repo", "owner/atlas", "--tag", "v1.0"), "latest, preview or atlas-ID")
    assert_bad_input(script("latest-release-data", "--repo", "owner", "--tag", "preview"), "OWNER/NAME")


# --- tests-passed: the Pages gate -----------------------------------------------------------------

def gate(tmp_path, *runs):
    path = tmp_path / "runs.json"
    path.write_text(json.dumps({"total_count": len(runs), "workflow_runs": [
        {"head_sha": sha, "status": status, "conclusion": conclusion, "html_url": f"https://runs/{index}"}
        for index, (sha, status, conclusion) in enumerate(runs)]}))
    return script("tests-passed", "--sha", SHA, "--repo", "owner/atlas", "--runs-json", path)


def test_tests_passed_opens_the_gate_only_for_a_successful_run_of_that_commit(tmp_path):
    other = "f" * 40
    passed = gate(tmp_path, (SHA, "completed", "failure"), (SHA, "completed", "success"))
    assert passed.returncode == 0 and passed.stdout == f"sha={SHA}\n"
    running = gate(tmp_path, (SHA, "in_progress", None), (other, "completed", "success"))
    assert running.returncode == 1
    assert running.stderr.strip() == (f"error: tests.yml has not passed on {SHA[:12]} (its latest run is in_progress: "
                                      "https://runs/0); Pages deploys once it has")
    never = gate(tmp_path)
    assert never.returncode == 1 and "it has not run" in never.stderr


def test_tests_passed_refuses_bad_input(tmp_path):
    assert_bad_input(script("tests-passed", "--sha", "main", "--repo", "owner/atlas"), "full commit sha")
    assert_bad_input(script("tests-passed", "--sha", SHA, "--repo", "atlas"), "OWNER/NAME")
    assert_bad_input(script("tests-passed", "--repo", "owner/atlas"), "--sha")


# --- the Makefile block ---------------------------------------------------------------------------

@pytest.mark.parametrize("target, variables, command", [
    ("atlas-plan", ["ATLAS_SHARDS=0"],
     'PYTHON=.venv/bin/python scripts/atlas/plan-matrix --what both --quality full --weights imagenet --shards "0" '
     "--summary /dev/stdout"),
    ("atlas-shard", ["ATLAS_SHARD=3", "ATLAS_SHARDS=16", "ATLAS_WHAT=filters"],
     'PYTHON=.venv/bin/python scripts/atlas/run-shard --what filters --quality full --weights imagenet '
     '--shard "3" --shards "16"'),
    ("atlas-merge", ["ATLAS_SHARDS=16"],
     'PYTHON=.venv/bin/python scripts/atlas/merge --shards "16" --weights imagenet --fresh-out'),
    ("k8s-submit", ["ATLAS_SHARDS=8", "ATLAS_IMAGE=r/a:1"],
     '.venv/bin/python cluster/kubernetes/submit --shards "8" --what both --quality full --weights imagenet '
     '--image "r/a:1"'),
])
def test_make_targets_call_the_scripts(target, variables, command):
    result = subprocess.run(["make", "--no-print-directory", "-n", "-o", ".venv/.installed", target, *variables],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == command

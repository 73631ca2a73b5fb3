"""The cluster launchers, checked as far as a machine without SLURM or Kubernetes allows: every
shell script parses (bash -n) and passes shellcheck; the SLURM array task runs build.py with
--shard auto under a simulated array environment; submit chains the merge after the array
(afterok) through a stand-in sbatch; the Kubernetes manifests parse, hold the fields an Indexed
Job and its merge need, agree with each other and with the renderer, validate against the
Kubernetes 1.33 schema (kubernetes-validate, offline), and submit drives a stand-in kubectl."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import assert_bad_input
import yaml

ROOT = Path(__file__).resolve().parents[1]
SLURM = ROOT / "cluster" / "slurm"
KUBERNETES = ROOT / "cluster" / "kubernetes"
SELECTION_BOTH_FULL = ["--layers", "block1..block5", "--classes", "all", "--quality", "full"]


def shell_scripts():
    """Every bash script of scripts/atlas and cluster/."""
    candidates = [*(ROOT / "scripts" / "atlas").iterdir(), *(ROOT / "cluster").rglob("*")]
    return sorted(path for path in candidates if path.is_file() and "bash" in path.read_text().split("\n", 1)[0])


def test_the_shell_scripts_are_found():
    names = {path.relative_to(ROOT).as_posix() for path in shell_scripts()}
    assert {"scripts/atlas/lib.sh", "scripts/atlas/merge", "cluster/slurm/atlas.sbatch", "cluster/slurm/merge.sbatch",
            "cluster/slurm/submit"} <= names


@pytest.mark.parametrize("path", shell_scripts(), ids=lambda path: path.relative_to(ROOT).as_posix())
def test_shell_script_parses(path):
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (apt-get install shellcheck)")
def test_shell_scripts_pass_shellcheck():
    result = subprocess.run(["shellcheck", "-x", *map(str, shell_scripts())], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:]


def recorder(tmp_path, name, body):
    """An executable stand-in for a command: a sh script with the given body."""
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def run(command, env=None, cwd=ROOT, stdin=None):
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=60, cwd=cwd,
                          input=stdin, env={**os.environ, **(env or {})})


# --- SLURM ----------------------------------------------------------------------------------------

def sbatch_directives(path):
    """The #SBATCH options, which SLURM reads only before the first command."""
    directives = []
    for line in path.read_text().splitlines()[1:]:
        if line.startswith("#SBATCH "):
            directives.append(line.removeprefix("#SBATCH ").strip())
        elif line.strip() and not line.startswith("#"):
            break
    return directives


def test_sbatch_scripts_declare_an_array_and_a_merge_job():
    array = sbatch_directives(SLURM / "atlas.sbatch")
    assert "--array=0-15" in array and "--job-name=vgg16-atlas" in array
    assert any(d.startswith("--time=") for d in array) and any(d.startswith("--cpus-per-task=") for d in array)
    merge = sbatch_directives(SLURM / "merge.sbatch")
    assert "--job-name=vgg16-atlas-merge" in merge and not any(d.startswith("--array") for d in merge)
    text = (SLURM / "merge.sbatch").read_text()
    assert 'exec scripts/atlas/merge --shards "$ATLAS_SHARDS"' in text and '--from "$ATLAS_SHARED/shards"' in text
    assert '--tarball "$ATLAS_SHARED/site_src.tar.gz"' in text


def array_task(tmp_path, **slurm):
    fake = recorder(tmp_path, "python", f'echo "$@" > "{tmp_path}/argv"\n')
    env = {"ATLAS_SHARED": str(tmp_path / "shared"), "ATLAS_SHARDS": "4", "ATLAS_PYTHON": str(fake),
           "SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4", **slurm}
    return run(["bash", SLURM / "atlas.sbatch"], env=env)


def test_array_task_draws_its_shard_with_shard_auto(tmp_path):
    result = array_task(tmp_path, ATLAS_WHAT="classes", ATLAS_QUALITY="preview")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "argv").read_text() == (
        f"build.py --classes all --quality preview --weights imagenet --shard auto "
        f"--out {tmp_path}/shared/shards --no-progress\n")


def test_array_task_refuses_a_partial_array(tmp_path):
    assert_bad_input(array_task(tmp_path, SLURM_ARRAY_TASK_COUNT="2"), "the array has 2 tasks but ATLAS_SHARDS is 4")
    assert not (tmp_path / "argv").exists()


def test_array_task_needs_the_repository_as_working_directory(tmp_path):
    env = {"ATLAS_SHARED": str(tmp_path), "ATLAS_SHARDS": "1", "SLURM_ARRAY_TASK_COUNT": "1"}
    assert_bad_input(run(["bash", SLURM / "atlas.sbatch"], env=env, cwd=tmp_path), "is not the atlas repository")


def test_submit_dry_run_chains_the_merge_after_the_array(tmp_path):
    result = run([SLURM / "submit", "--shards", "4", "--shared", tmp_path, "--what", "filters", "--python", "/opt/py",
                  "--dry-run", "--", "--partition=cpu"])
    assert result.returncode == 0, result.stderr
    exports = (f"ALL\\,ATLAS_SHARED={tmp_path}\\,ATLAS_SHARDS=4\\,ATLAS_WHAT=filters\\,ATLAS_QUALITY=full"
               "\\,ATLAS_WEIGHTS=imagenet\\,ATLAS_PYTHON=/opt/py")
    assert result.stdout.splitlines() == [
        f"sbatch --parsable --chdir={ROOT} --array=0-3 --export={exports} --partition=cpu {SLURM}/atlas.sbatch",
        f"sbatch --parsable --chdir={ROOT} --dependency=afterok:ARRAY_JOB_ID --kill-on-invalid-dep=yes "
        f"--export={exports}\\,ATLAS_IMAGES= --partition=cpu {SLURM}/merge.sbatch",
    ]


def test_submit_passes_the_array_job_id_to_the_merge(tmp_path):
    log = tmp_path / "sbatch.log"
    recorder(tmp_path, "sbatch", f'echo "$@" >> "{log}"\ncase "$*" in *--array=*) echo "1234;cluster" ;; *) echo 1235 ;; esac\n')
    env = {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    result = run([SLURM / "submit", "--shards", "16", "--shared", tmp_path], env=env)
    assert result.returncode == 0, result.stderr
    array, merge = log.read_text().splitlines()
    assert "--array=0-15 " in array and array.endswith("atlas.sbatch")
    assert "--dependency=afterok:1234 " in merge and merge.endswith("merge.sbatch")
    assert "squeue -j 1234,1235" in result.stderr


@pytest.mark.parametrize("args, words", [
    (["--shards", "0", "--shared", "/tmp"], ["--shards must be at least 1"]),
    (["--shards", "4"], ["--shared is required"]),
    (["--shards", "4", "--shared", "/no/such/folder"], ["is not a folder"]),
    (["--shards", "4", "--shared", "/tmp", "--what", "most"], ["'most'"]),
    (["--shards", "4", "--shared", "/tmp", "--weights", "a,b.h5"], ["comma"]),
])
def test_submit_refuses_bad_input(args, words):
    assert_bad_input(run([SLURM / "submit", *args, "--dry-run"]), *words)


# --- Kubernetes -----------------------------------------------------------------------------------

def manifests():
    """(PVC, shard Job, merge Job) as committed."""
    claim, shards = yaml.safe_load_all((KUBERNETES / "atlas-job.yaml").read_text())
    (merge,) = yaml.safe_load_all((KUBERNETES / "atlas-merge-job.yaml").read_text())
    return claim, shards, merge


def container(job):
    (only,) = job["spec"]["template"]["spec"]["containers"]
    return only


def option(args, name):
    return args[args.index(name) + 1]


def check_manifests(claim, shards, merge, count, selection):
    """The fields an Indexed Job of `count` shards and its merge need, consistent with each other."""
    assert claim["kind"] == "PersistentVolumeClaim" and claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert shards["apiVersion"] == merge["apiVersion"] == "batch/v1" and shards["kind"] == merge["kind"] == "Job"
    spec = shards["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == count
    shard = container(shards)
    assert shard["command"] == ["python", "build.py"]
    assert shard["args"] == [*selection, "--weights", "imagenet", "--shard", "auto", "--shards", str(count),
                             "--out", "/shared/shards", "--no-progress"]
    index_env = next(env for env in shard["env"] if env["name"] == "JOB_COMPLETION_INDEX")
    assert index_env["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    step = container(merge)
    assert step["command"] == ["scripts/atlas/merge"]
    assert option(step["args"], "--shards") == str(count) and option(step["args"], "--from") == "/shared/shards"
    assert option(step["args"], "--tarball") == "/shared/site_src.tar.gz" and "--fresh-out" in step["args"]
    for job, used in ((shards, shard), (merge, step)):
        pod = job["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        (volume,) = pod["volumes"]
        assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        assert used["volumeMounts"] == [{"name": volume["name"], "mountPath": "/shared"}]
        assert used["workingDir"] == "/opt/vgg16-atlas"
    assert shard["image"] == step["image"]


def test_committed_manifests_hold_an_indexed_job_and_its_merge():
    check_manifests(*manifests(), count=16, selection=SELECTION_BOTH_FULL)


def submit_kubernetes(*args, env=None):
    return run([sys.executable, KUBERNETES / "submit", *args], env=env)


def rendered(*args):
    result = submit_kubernetes(*args, "--dry-run")
    assert result.returncode == 0, result.stderr
    return list(yaml.safe_load_all(result.stdout))


def test_render_with_the_defaults_is_the_committed_manifest():
    assert rendered("--shards", "16") == list(manifests())


def test_render_sets_n_selection_image_and_photos_everywhere():
    claim, shards, merge = rendered("--shards", "8", "--what", "filters", "--quality", "preview",
                                    "--image", "registry.example/atlas:1", "--images", "/shared/photos",
                                    "--storage", "50Gi")
    check_manifests(claim, shards, merge, count=8, selection=["--layers", "block1..block5", "--quality", "preview"])
    assert container(shards)["image"] == "registry.example/atlas:1"
    assert option(container(merge)["args"], "--images") == "/shared/photos"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"


@pytest.mark.parametrize("args, words", [
    (["--shards", "0"], ["--shards must be 1..10000"]),
    (["--shards", "4", "--what", "most"], ["'most'"]),
    (["--shards", "4", "--images", "/tmp/photos"], ["under /shared/"]),
    (["--shards", "4", "--storage", "lots"], ["quantity"]),
    (["--what", "both"], ["--shards"]),
])
def test_kubernetes_submit_refuses_bad_input(args, words):
    assert_bad_input(submit_kubernetes(*args, "--dry-run"), *words)


def test_kubernetes_manifests_validate_against_the_schema():
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    for document in [*manifests(), *rendered("--shards", "3", "--images", "/shared/photos")]:
        kubernetes_validate.validate(document, "1.33.0", strict=True)
    broken = manifests()[1]
    broken["spec"]["completions"] = "16"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.33.0", strict=True)


def test_kubernetes_submit_applies_waits_then_merges(tmp_path):
    log = tmp_path / "kubectl.log"
    recorder(tmp_path, "kubectl", f'echo "$*" >> "{log}"\n'
                                  f'case "$*" in *apply*) cat > "{tmp_path}/applied-$(wc -l < "{log}")" ;; '
                                  '*"get job"*) printf "Complete" ;; esac\n')
    env = {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    result = submit_kubernetes("--shards", "4", "--namespace", "ml", env=env)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert calls == [
        "--namespace ml delete job vgg16-atlas-shards vgg16-atlas-merge --ignore-not-found",
        "--namespace ml apply -f -",
        '--namespace ml get job vgg16-atlas-shards -o jsonpath={.status.conditions[?(@.status=="True")].type}',
        "--namespace ml delete job vgg16-atlas-merge --ignore-not-found",
        "--namespace ml apply -f -",
    ]
    shard_docs = list(yaml.safe_load_all((tmp_path / "applied-2").read_text()))
    merge_docs = list(yaml.safe_load_all((tmp_path / "applied-5").read_text()))
    assert [doc["metadata"]["name"] for doc in shard_docs] == ["vgg16-atlas-shared", "vgg16-atlas-shards"]
    assert [doc["metadata"]["name"] for doc in merge_docs] == ["vgg16-atlas-merge"]
    check_manifests(*shard_docs, *merge_docs, count=4, selection=SELECTION_BOTH_FULL)


def test_kubernetes_submit_stops_when_the_shard_job_failed(tmp_path):
    log = tmp_path / "kubectl.log"
    recorder(tmp_path, "kubectl", f'echo "$*" >> "{log}"\ncase "$*" in *apply*) cat > /dev/null ;; '
                                  '*"get job"*) printf "Failed" ;; esac\n')
    result = submit_kubernetes("--shards", "4", env={"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"})
    assert result.returncode == 1 and "job vgg16-atlas-shards failed" in result.stderr
    assert not any("merge" in call and "apply" in call for call in log.read_text().splitlines())

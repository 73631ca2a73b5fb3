"""Set-up: the site renders without TensorFlow, constraints.txt pins the whole tree, and
scripts/ensure-system-packages says in one line what it cannot install."""

import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CONSTRAINTS = ROOT / "constraints.txt"
ENSURE = ROOT / "scripts" / "ensure-system-packages"

# Top-level modules that only the `draw` extra installs: none may be imported to render the site.
DRAW_MODULES = ("tensorflow", "keras", "tf_keras_vis", "onnx", "h5py", "skimage", "tqdm")
# Run as `python -c BLOCKER + code`: importing any of DRAW_MODULES raises ModuleNotFoundError,
# as on a machine with only the base install.
BLOCKER = f"""
import importlib.abc, sys
class DrawModuleBlocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {DRAW_MODULES!r}:
            raise ModuleNotFoundError(f"blocked: {{name}} (not in the base install)", name=name)
        return None
sys.meta_path.insert(0, DrawModuleBlocker())
"""


def run_without_draw_modules(code, *args, timeout=120):
    """CompletedProcess of `python -c BLOCKER + code` in the repository root."""
    return subprocess.run([sys.executable, "-c", BLOCKER + code, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def normalized(name):
    """PEP 503 name: lower case, runs of -_. as one dash."""
    return re.sub(r"[-_.]+", "-", name).lower()


def constraint_pins():
    """{normalized name: {version, ...}} of constraints.txt (a name may have one pin per marker)."""
    pins = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            pins.setdefault(normalized(requirement.name), set()).add(specifier.version)
    return pins


def direct_requirements():
    """{group: [Requirement]} for the base install ("base") and every extra of pyproject.toml."""
    groups = {"base": PYPROJECT["project"]["dependencies"], **PYPROJECT["project"]["optional-dependencies"]}
    return {group: [Requirement(text) for text in texts] for group, texts in groups.items()}


def test_the_blocker_really_blocks_tensorflow():
    """Control for the tests below: under the blocker, TensorFlow cannot be imported."""
    result = run_without_draw_modules("import tensorflow")
    assert result.returncode == 1 and "blocked: tensorflow" in result.stderr


def test_rendering_modules_import_without_drawing_dependencies():
    modules = ["generator.site", "generator.store", "generator.classes", "generator.architecture",
               "generator.errors", "jinja2", "mkdocs", "material", "PIL", "numpy", "yaml", "jsonschema"]
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    result = run_without_draw_modules(code, *modules)
    assert result.returncode == 0, result.stderr


def test_render_only_needs_no_tensorflow(tmp_path):
    out = tmp_path / "site_src"
    out.mkdir()
    code = f"import runpy\nsys.argv = ['build.py', '--render-only', '--out', {str(out)!r}]\n" \
           "runpy.run_path('build.py', run_name='__main__')\n"
    result = run_without_draw_modules(code)
    assert result.returncode == 0, result.stderr
    assert (out / "index.md").is_file() and (out / "vgg16" / "block5_conv3" / "index.md").is_file()


def test_base_install_holds_only_the_light_dependencies():
    requirements = direct_requirements()
    base = {normalized(r.name) for r in requirements["base"]}
    draw = {normalized(r.name) for r in requirements["draw"]}
    assert base == {"jinja2", "markupsafe", "mkdocs", "mkdocs-material", "pillow", "numpy", "pyyaml", "jsonschema",
                    "filelock"}
    assert {"tensorflow-cpu", "keras", "tf-keras-vis", "onnx", "h5py", "scikit-image", "tqdm"} <= draw
    assert not base & draw


def test_every_direct_dependency_is_pinned_at_its_constraints_version():
    pins = constraint_pins()
    for group, requirements in direct_requirements().items():
        for requirement in requirements:
            specifiers = list(requirement.specifier)
            assert [s.operator for s in specifiers] == ["=="], f"{group}: {requirement} is not pinned with =="
            assert pins.get(normalized(requirement.name)) == {specifiers[0].version}, \
                f"{group}: {requirement} vs constraints.txt {pins.get(normalized(requirement.name))}; run make constraints"


def _installed_requirements(name, extras=()):
    """The requirements of the installed distribution `name` that apply here, or [] if not installed."""
    from importlib import metadata

    try:
        texts = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return []
    applying = []
    for requirement in map(Requirement, texts):
        environments = [{**default_environment(), "extra": extra} for extra in (*extras, "")]
        if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
            applying.append(requirement)
    return applying


def test_constraints_pin_the_whole_installed_tree():
    """Every package that the direct dependencies pull in here, transitively, has a pin."""
    pins = constraint_pins()
    pending = [r for requirements in direct_requirements().values() for r in requirements]
    seen = set()
    while pending:
        requirement = pending.pop()
        name = normalized(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        assert name in pins, f"{name} (needed here) is missing from constraints.txt; run make constraints"
        pending.extend(_installed_requirements(requirement.name, requirement.extras))
    assert len(seen) > 60  # the walk went past the direct dependencies


def test_makefile_installs_through_the_constraints(tmp_path):
    """`make` (dry run) installs the full tree for atlas/test and only the base for site."""
    def dry_run(target):
        result = subprocess.run(["make", "-n", "-B", target, f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return [line for line in result.stdout.splitlines() if "pip install" in line and "constraints" in line]

    if not shutil.which("make"):
        pytest.skip("make is not installed")
    assert any(line.endswith('-c constraints.txt -e ".[draw,test]"') for line in dry_run("atlas"))
    assert any(line.endswith('-c constraints.txt -e .') for line in dry_run("site"))
    assert not any("draw" in line for line in dry_run("site"))


def fake_commands(directory, **scripts):
    """A folder of executable shell scripts {name: body}, to put first on PATH."""
    directory.mkdir(exist_ok=True)
    for name, body in scripts.items():
        path = directory / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return directory


def ensure(what, fakes, python):
    environment = {**os.environ, "PATH": f"{fakes}:{os.environ['PATH']}", "PYTHON": str(python)}
    return subprocess.run([str(ENSURE), what], capture_output=True, text=True, env=environment, timeout=60)


def test_ensure_python_accepts_this_python(tmp_path):
    result = ensure("python", fake_commands(tmp_path / "bin"), sys.executable)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_ensure_python_refuses_an_old_python_in_one_line(tmp_path):
    fakes = fake_commands(tmp_path / "bin", python3old='echo 10')
    result = ensure("python", fakes, fakes / "python3old")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "is Python 3.10; the atlas needs Python >= 3.11" in result.stderr


def test_ensure_python_without_venv_and_without_root_is_one_line(tmp_path):
    """A Python without ensurepip (Debian without python3-venv), a user who is not root, and a sudo
    that refuses (no password can be asked): one line naming the package, no apt-get run."""
    fakes = fake_commands(
        tmp_path / "bin",
        python3novenv='case "$2" in *ensurepip*) exit 1;; *) echo 11;; esac',
        id="echo 1000",
        sudo=f"touch {tmp_path}/sudo-called; exit 1",
    )
    result = ensure("python", fakes, fakes / "python3novenv")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[-1] == "error: could not install system packages: python3.11-venv; " \
                        "install them as root: apt-get install python3.11-venv"
    assert (tmp_path / "sudo-called").exists()


def test_ensure_browser_without_sudo_is_one_line(tmp_path):
    """Not root, no sudo, no chromium: a PATH holding only bash, grep and a fake `id`."""
    fakes = fake_commands(tmp_path / "bin", id="echo 1000")
    for tool in ("bash", "grep"):
        (fakes / tool).symlink_to(shutil.which(tool))
    result = subprocess.run([str(ENSURE), "browser"], capture_output=True, text=True,
                            env={**os.environ, "PATH": str(fakes)}, timeout=60)
    assert result.returncode == 2
    assert re.fullmatch(r"error: missing system packages: (chromium shellcheck( libatomic1)?); "
                        r"install them as root: apt-get install \1\n", result.stderr), result.stderr


@pytest.mark.slow
def test_base_install_renders_the_site_without_tensorflow(tmp_path):
    """A fresh virtualenv with only `pip install -c constraints.txt .`: render and mkdocs build."""
    work = tmp_path / "repo"  # a copy, so that the build leaves nothing in the checkout
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".git", ".venv", ".cache", "site", "build",
                                                              "*.egg-info"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-c", str(CONSTRAINTS), str(work)],
                   check=True, timeout=900)
    assert subprocess.run([str(python), "-c", "import tensorflow"], capture_output=True).returncode == 1
    for command in (["build.py", "--render-only"], ["-m", "mkdocs", "build", "--strict", "--quiet"]):
        result = subprocess.run([str(python), *command], cwd=work, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
    assert (work / "site" / "index.html").is_file()


def test_the_photos_modules_import_without_scikit_image():
    """The command line imports them for its checks; the site's base install has no scikit-image."""
    code = ("import generator.photos as photos, generator.dataset_photos\n"
            "assert 'skimage' not in sys.modules\n"
            "try:\n    photos.builtin_photos()\nexcept ImportError:\n    print('needs scikit-image only when used')\n")
    result = run_without_draw_modules(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "needs scikit-image only when used"

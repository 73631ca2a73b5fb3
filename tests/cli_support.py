"""Helpers of the tests that run the command line as a user does (not a test module)."""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(*args, cwd=ROOT, env=None, timeout=600):
    """Run build.py with `args` (paths may be Path); the CompletedProcess with text output."""
    return subprocess.run([sys.executable, str(ROOT / "build.py"), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_bad_input(result, *words):
    """Exit 2 with exactly one line on stderr, starting "error: " and holding `words`; that line."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def signal_after_first_unit(args, watched, signal_number, timeout=300):
    """Start build.py with `args`, send `signal_number` once a unit.json appears below `watched`;
    returns (exit code, stderr)."""
    process = subprocess.Popen([sys.executable, str(ROOT / "build.py"), *map(str, args)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not list(Path(watched).rglob("unit.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr

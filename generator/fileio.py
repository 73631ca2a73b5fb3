"""Small file helpers every stage shares: atomic writes, JSON reads, checksums, temp clean-up.

Every file is written to a temporary name in its final directory (".<name>.atlas-<random>.tmp") and
moved into place with `os.replace`, so a reader, or a run killed mid-write, never sees a
half-written file. A killed run can leave such a temporary behind; `remove_stale_temporaries`
clears them on the next start.
"""

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

_TEMPORARY = re.compile(r"^\..+\.atlas-[A-Za-z0-9_]{8}\.tmp$")  # what atomic_write_bytes names its temporaries


def atomic_write_bytes(path, data):
    """Write `data` (bytes) to `path` atomically, creating parent directories; mode 0644.

    Raises OSError (disk full, no permission): the previous file at `path`, if any, is intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.atlas-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; the site is served to everyone
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def json_bytes(obj):
    """`obj` as the project writes JSON: indented, UTF-8, a final newline; NaN and infinity refused."""
    return (json.dumps(obj, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def atomic_write_json(path, obj):
    """Write `obj` as JSON (`json_bytes`) to `path` atomically."""
    atomic_write_bytes(path, json_bytes(obj))


def write_if_changed(path, data):
    """Atomically write bytes `data` to `path` unless it already holds exactly that; True when written."""
    try:
        if Path(path).read_bytes() == data:
            return False
    except OSError:
        pass
    atomic_write_bytes(path, data)
    return True


class UnreadableJson(ValueError):
    """A JSON file that exists but cannot be read or parsed."""


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def read_json(path):
    """The parsed JSON at `path`; None when there is no such file.

    Raises UnreadableJson when the file exists but is unreadable or not JSON (NaN and Infinity,
    which Python would accept and browsers refuse, included).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise UnreadableJson(f"unreadable ({error})") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as error:
        raise UnreadableJson(f"not valid JSON ({error})") from None


def sha256_file(path):
    """Hex sha256 of the file at `path`, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def remove_stale_temporaries(root):
    """Delete the temporaries `atomic_write_bytes` left below `root` (a run killed mid-write).

    Call it only while holding the output directory's lock, so no live run owns them.
    Returns the number of files removed.
    """
    removed = 0
    for path in Path(root).rglob(".*.tmp"):
        if path.is_file() and _TEMPORARY.match(path.name):
            path.unlink()
            removed += 1
    return removed

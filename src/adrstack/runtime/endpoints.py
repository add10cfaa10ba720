"""The endpoints of a running ``adrstack up``, in ``<data-dir>/run/endpoints.json``, so that other
commands on the machine (``adrstack tail``) find its NATS without being told.

``up`` writes the file once everything answers and removes it when it stops cleanly. A file left by
an ``up`` that was killed names a process that is gone: readers ignore it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

FILE = Path("run") / "endpoints.json"


def path(data_dir: Path) -> Path:
    return Path(data_dir) / FILE


def write(data_dir: Path, endpoints: dict) -> Path:
    """Write ``endpoints`` with this process's pid (atomically, readable by this user only)."""
    target = path(data_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"pid": os.getpid(), **endpoints}, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, target)
    return target


def remove(data_dir: Path) -> None:
    """Remove the file if this process wrote it."""
    target = path(data_dir)
    try:
        if json.loads(target.read_text(encoding="utf-8")).get("pid") == os.getpid():
            target.unlink()
    except (OSError, ValueError):
        pass


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def read(data_dir: Path) -> dict | None:
    """The endpoints of the ``up`` running on ``data_dir``; None when there is none (no file, an
    unreadable one, or one whose process is gone)."""
    try:
        found = json.loads(path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or not _alive(found.get("pid")):
        return None
    return found

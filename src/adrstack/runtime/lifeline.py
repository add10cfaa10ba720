"""Tie a child process's life to ours, so that not even a SIGKILL of the supervisor leaves orphans.

On Linux the child asks the kernel (``prctl(PR_SET_PDEATHSIG)``) for a signal when the thread
that forked it dies. Elsewhere this is a no-op and the supervisor's orderly stop is the only
guarantee. The kernel clears the setting when credentials change, which is why it must run in
``preexec_fn`` (CPython calls that after ``setuid``/``setgid``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from typing import Callable

PR_SET_PDEATHSIG = 1


def _libc_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive ``sig`` when this process dies.

    Returns None where the platform cannot do it. The prctl function is looked up here, before
    the fork, because the child between fork and exec must not do more than the bare minimum.
    """
    prctl = _libc_prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        # The parent may have died between fork and prctl; then nobody would ever signal us.
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec

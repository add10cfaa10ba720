"""Small stand-in child programs (as ``python -c`` code) for supervisor tests."""

from __future__ import annotations

import sys

# Prints its pid, then waits; exits 0 on SIGTERM.
STEADY = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: (print('bye', flush=True), sys.exit(0)))
print('ready', os.getpid(), flush=True)
while True: time.sleep(1)
"""

# Exits with code 3 on its first run (counted in a file), then behaves like STEADY.
CRASH_ONCE = """
import os, pathlib, sys
counter = pathlib.Path(sys.argv[1])
runs = int(counter.read_text() or 0) + 1 if counter.exists() else 1
counter.write_text(str(runs))
if runs == 1:
    print('crashing on purpose', flush=True)
    sys.exit(3)
""" + STEADY

# Ignores SIGTERM: only SIGKILL stops it.
STUBBORN = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print('ready', os.getpid(), flush=True)
while True: time.sleep(1)
"""

# Starts a grandchild in its own process group, then waits.
FORKER = """
import os, subprocess, sys, time
g = subprocess.Popen([sys.executable, '-c', 'import time\\nwhile True: time.sleep(1)'])
print('ready', os.getpid(), 'grandchild', g.pid, flush=True)
while True: time.sleep(1)
"""


def argv(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]

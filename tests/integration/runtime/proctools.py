"""Watching process trees and output of processes under test."""

from __future__ import annotations

import subprocess
import threading

import psutil


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    living = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                living.append(p)
        except psutil.NoSuchProcess:
            pass
    return living


def describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            out.append(str(p.pid))
    return out


class Output:
    """Collects a process's stdout lines in a thread, so tests can poll it."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def has(self, needle: str) -> bool:
        return any(needle in line for line in self.lines)

    def matching(self, needle: str) -> list[str]:
        return [line for line in self.lines if needle in line]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def join(self, timeout: float = 10) -> None:
        self._thread.join(timeout)

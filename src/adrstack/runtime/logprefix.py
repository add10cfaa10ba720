"""Children's output, line by line, behind a fixed-width name: ``gateway   | ...``."""

from __future__ import annotations

from typing import Iterable


def prefix(name: str, width: int) -> str:
    return f"{name:<{width}} | "


class LinePrefixer:
    """Turns a child's raw output chunks into prefixed text lines.

    Chunks split lines anywhere (even inside a UTF-8 sequence), so bytes are held until the
    newline; ``finish()`` flushes a last line without one. Undecodable bytes are replaced,
    carriage returns dropped, so one line of input is always exactly one line of output.
    """

    def __init__(self, name: str, width: int | None = None) -> None:
        self.head = prefix(name, width or len(name))
        self._pending = b""

    def feed(self, chunk: bytes) -> list[str]:
        data = self._pending + chunk
        *complete, self._pending = data.split(b"\n")
        return [self._format(raw) for raw in complete]

    def finish(self) -> list[str]:
        rest, self._pending = self._pending, b""
        return [self._format(rest)] if rest else []

    def _format(self, raw: bytes) -> str:
        text = raw.decode("utf-8", "replace").rstrip("\r").replace("\r", "")
        return f"{self.head}{text}\n"


def prefixed(name: str, width: int, chunks: Iterable[bytes]) -> list[str]:
    """All prefixed lines of a finished output (convenience for tests and short outputs)."""
    p = LinePrefixer(name, width)
    lines = [line for chunk in chunks for line in p.feed(chunk)]
    return lines + p.finish()

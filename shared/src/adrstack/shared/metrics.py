"""Prometheus text exposition (format 0.0.4) without a client library: each service keeps a few
counters and gauges and renders them on ``GET /metrics``."""

from __future__ import annotations

import math
import threading
from typing import Callable, Iterable, Mapping

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds; wide enough for a DB batch from one row to a slow, large insert.
DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = Mapping[str, str]


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class Counter:
    def __init__(self, name: str, help: str) -> None:
        self.name, self.help = name, help
        self._values: dict[tuple, float] = {}
        self._lock = threading.Lock()  # callbacks may run in worker threads (openleadr handlers)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        values = dict(self._values) or {(): 0.0}  # a counter that never moved still shows 0
        lines += [f"{self.name}{_labels(dict(k))} {_number(v)}" for k, v in sorted(values.items())]
        return lines


class Gauge:
    """A value read when scraped: ``read`` returns {labels: value} (or a number for no labels).
    ``kind="counter"`` exposes a total the service already keeps (no second count to drift)."""

    def __init__(self, name: str, help: str, read: Callable[[], float | Mapping[tuple, float]],
                 kind: str = "gauge") -> None:
        self.name, self.help, self.read, self.kind = name, help, read, kind

    def render(self) -> list[str]:
        value = self.read()
        values = value if isinstance(value, Mapping) else {(): value}
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        lines += [f"{self.name}{_labels(dict(k))} {_number(v)}" for k, v in sorted(values.items())]
        return lines


class Histogram:
    def __init__(self, name: str, help: str, buckets: Iterable[float] = DEFAULT_BUCKETS) -> None:
        self.name, self.help = name, help
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self.sum += value
            for i, bound in enumerate(self.bounds):
                if value <= bound:
                    self.counts[i] += 1
                    break
            else:
                self.counts[-1] += 1

    @property
    def count(self) -> int:
        return sum(self.counts)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        running = 0
        for bound, n in zip((*self.bounds, math.inf), self.counts):
            running += n
            lines.append(f'{self.name}_bucket{{le="{_number(bound)}"}} {running}')
        lines += [f"{self.name}_sum {_number(self.sum)}", f"{self.name}_count {running}"]
        return lines


class Registry:
    def __init__(self) -> None:
        self.metrics: list[Counter | Gauge | Histogram] = []

    def add(self, metric):
        self.metrics.append(metric)
        return metric

    def render(self) -> bytes:
        lines: list[str] = []
        for metric in self.metrics:
            lines += metric.render()
        return ("\n".join(lines) + "\n").encode("utf-8")

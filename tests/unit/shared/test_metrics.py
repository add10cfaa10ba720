"""The hand-written Prometheus exposition parses as Prometheus text."""

from __future__ import annotations

from adrstack.shared.metrics import CONTENT_TYPE, Counter, Gauge, Histogram, Registry
from tests.helpers import metric, parse_metrics


def test_counters_gauges_and_histograms_render_and_parse():
    r = Registry()
    polls = r.add(Counter("x_polls_total", "polls"))
    r.add(Counter("x_idle_total", "never moved"))
    r.add(Gauge("x_events", "events by state", lambda: {(("state", "active"),): 2, (("state", 'far"\n'),): 1}))
    r.add(Gauge("x_clients", "clients", lambda: 3))
    h = r.add(Histogram("x_seconds", "latency", buckets=(0.1, 1.0)))
    polls.inc(ven="v1")
    polls.inc(2, ven="v1")
    h.observe(0.05), h.observe(0.5), h.observe(7)
    samples = parse_metrics(r.render().decode())
    assert metric(samples, "x_polls_total", ven="v1") == 3
    assert metric(samples, "x_idle_total") == 0
    assert metric(samples, "x_events", state="active") == 2
    assert metric(samples, "x_events", state='far\\"\\n') == 1  # escaped, on one line
    assert metric(samples, "x_clients") == 3
    assert [metric(samples, "x_seconds_bucket", le=le) for le in ("0.1", "1", "+Inf")] == [1, 2, 3]
    assert metric(samples, "x_seconds_count") == 3 and metric(samples, "x_seconds_sum") == 7.55
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")

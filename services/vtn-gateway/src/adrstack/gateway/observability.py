"""The gateway's /metrics: what VENs did (polls, registrations, readings) and what it holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adrstack.shared.metrics import Counter, Gauge, Registry

if TYPE_CHECKING:
    from .app import Gateway


class GatewayMetrics:
    """Counted by the handlers; a replica counts its own (Prometheus sums replicas)."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.polls = self.registry.add(Counter("adrstack_gateway_polls_total", "oadrPoll requests answered"))
        self.registrations = self.registry.add(Counter(
            "adrstack_gateway_registrations_total",
            "oadrCreatePartyRegistration requests accepted (kind: new or again)"))
        self.reports = self.registry.add(Counter(
            "adrstack_gateway_reports_total", "oadrReports received in oadrUpdateReport and published"))
        self.readings = self.registry.add(Counter(
            "adrstack_gateway_readings_total", "Readings (report data points) received and published"))

    def add_state(self, gateway: "Gateway") -> None:
        """Gauges read from the gateway's mirrors when scraped."""
        self.registry.add(Gauge("adrstack_gateway_vens", "VENs in the registry mirror",
                                lambda: len(gateway.store.vens.mirror) if gateway.store else 0))
        self.registry.add(Gauge("adrstack_gateway_events", "DR events in the events mirror",
                                lambda: len(gateway.events) if gateway.events else 0))
        self.registry.add(Gauge(
            "adrstack_gateway_refused_total", "HTTP requests refused, by reason",
            lambda: {(("reason", k),): v for k, v in (gateway.server.refused if gateway.server else {}).items()},
            kind="counter"))

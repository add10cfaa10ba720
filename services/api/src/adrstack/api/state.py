"""What the running app holds: built in the lifespan, reached by resolvers through the context."""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client as NATS

from adrstack.shared.subjects import Subjects

from .fanout import Hub
from .groups import Groups
from .programs import Programs
from .provisioning import Provisioning
from .report_requests import ReportRequests
from .scheduler_client import SchedulerClient
from .settings import ApiSettings
from .store import Store
from .ven_commands import GatewayClient


@dataclass
class ApiState:
    settings: ApiSettings
    nc: NATS
    store: Store
    scheduler: SchedulerClient
    gateway: GatewayClient
    provisioning: Provisioning
    groups: Groups
    programs: Programs
    report_requests: ReportRequests
    # GraphQL subscriptions' one NATS subscription per subject family; its counts are in /health.
    hub: Hub

    @property
    def subjects(self) -> Subjects:
        return self.settings.subjects

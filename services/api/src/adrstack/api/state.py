"""What the running app holds: built in the lifespan, reached by resolvers through the context."""

from __future__ import annotations

from dataclasses import dataclass, field

from nats.aio.client import Client as NATS

from adrstack.shared.subjects import Subjects

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
    # Live GraphQL subscriptions (each one holds a NATS subscription); shown by /health.
    live_subscriptions: int = field(default=0)

    @property
    def subjects(self) -> Subjects:
        return self.settings.subjects

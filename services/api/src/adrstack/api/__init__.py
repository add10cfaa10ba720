"""adrstack API service: GraphQL (queries over Postgres, mutations as NATS commands to the
scheduler, subscriptions over NATS facts), the ``POST /send_event`` shortcut, ``/health``
and the operator dashboard. Run it with ``python -m adrstack.api``."""

"""Run the real Supervisor (as `adrstack up` does) over stand-in children given as JSON:

    python standin_supervisor.py '{"stop_timeout": 2, "children": {"name": [argv...]}}'
"""

from __future__ import annotations

import asyncio
import json
import sys

from adrstack.runtime.supervisor import Backoff, ChildSpec, Supervisor, run_until_signalled


def main() -> None:
    config = json.loads(sys.argv[1])
    sup = Supervisor(sys.stdout, width=9, stop_timeout=config.get("stop_timeout", 10),
                     backoff=Backoff(initial=config.get("backoff", 0.2)))
    specs = [ChildSpec(name, argv) for name, argv in config["children"].items()]
    asyncio.run(run_until_signalled(sup, specs))


if __name__ == "__main__":
    main()

"""``dataplane job-service``: a local Beam job service whose streaming jobs fire their timers."""

from __future__ import annotations

import argparse
import signal
from typing import Any

from runners.cli.serving import raise_interrupt
from schemas.errors import ConfigError

__all__ = ["add_job_service_command"]


def add_job_service_command(groups: Any) -> None:
    """Adds ``job-service`` to the ``dataplane`` parser."""
    jobs = groups.add_parser(
        "job-service",
        help="a local Beam job service (PortableRunner) whose streaming jobs fire their timers",
        description="Beam's local job service, running jobs on a FnApiRunner whose timers and "
        "watermarks work while a streaming read runs (see runners/local/job_service.py). Use "
        "--runner=portable --job_endpoint=localhost:PORT --environment_type=LOOPBACK.",
    )
    jobs.add_argument("--port", type=int, default=8099, help="port to listen on; 0: a free one")
    jobs.set_defaults(run=_job_service)


def _job_service(args: argparse.Namespace) -> int:
    from runners.local.job_service import serve

    signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        serve(args.port)
    except KeyboardInterrupt:
        pass
    except RuntimeError as err:  # grpc: the port could not be bound
        raise ConfigError("--port", f"cannot listen on localhost:{args.port}: {err}") from None
    return 0

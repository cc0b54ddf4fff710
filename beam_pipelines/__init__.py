"""The pipelines: ``python -m beam_pipelines.sentiment`` / ``.telemetry`` and their helpers."""

import sys as _sys

# Started as a pipeline program (``python -m beam_pipelines.sentiment ...``): take
# Ctrl-C as a stop request before the heavy imports (see beam_pipelines.launch.interrupts).
if _sys.argv[:1] == ["-m"] and any(
    arg in ("beam_pipelines.sentiment", "beam_pipelines.telemetry")
    for arg in getattr(_sys, "orig_argv", [])
):
    from beam_pipelines.launch.interrupts import stop_on_interrupts

    stop_on_interrupts()

"""The pipelines and what runs them: ``python -m beam_pipelines.sentiment`` / ``.telemetry``.

``sentiment.py`` and ``telemetry.py`` are the pipelines (each a runnable module);
``generate.py`` the command that writes synthetic tweets or telemetry to a stream
or file; ``feeds/`` those generators and the producers for Kafka, Kinesis, Pub/Sub
and files; ``counting.py`` the pipelines' records-in bookkeeping; ``launch/`` what
makes a pipeline module runnable on any runner with flags alone (flags and options,
runner presets and profiles, the local runners, the run summary, metrics endpoint,
lineage, Ctrl-C handling). Built on ``transforms`` and ``schemas``; ``runners``
drives these modules from outside and is never imported here.
"""

import sys as _sys

# Started as a pipeline program (``python -m beam_pipelines.sentiment ...``): take
# Ctrl-C as a stop request before the heavy imports (see beam_pipelines.launch.interrupts).
if _sys.argv[:1] == ["-m"] and any(
    arg in ("beam_pipelines.sentiment", "beam_pipelines.telemetry")
    for arg in getattr(_sys, "orig_argv", [])
):
    from beam_pipelines.launch.interrupts import stop_on_interrupts

    stop_on_interrupts()

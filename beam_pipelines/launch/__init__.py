"""Launching a pipeline module on a runner: flags → runner → run → summary, exit code.

:mod:`~beam_pipelines.launch.launcher` (``run_pipeline``, ``command_line``), the
flags and option groups (:mod:`~beam_pipelines.launch.flags`,
:mod:`~beam_pipelines.launch.options`), runner presets and profiles
(:mod:`~beam_pipelines.launch.presets`, :mod:`~beam_pipelines.launch.profiles`), the
local batch and streaming runners, the run summary and live progress display
(:mod:`~beam_pipelines.launch.summary`), the ``/metrics`` endpoint, OpenLineage
events, Ctrl-C handling and the process exit (:mod:`~beam_pipelines.launch.exiting`).
"""

"""Synthetic data and the producers that write it: :mod:`~beam_pipelines.feeds.tweets` and
:mod:`~beam_pipelines.feeds.telemetry` generate messages; :mod:`~beam_pipelines.feeds.kafka`
and :mod:`~beam_pipelines.feeds.kinesis` are the one producer per destination (used by the
``python -m beam_pipelines.generate`` CLI, the benchmarks and the fault harness in
``tests/faults``); :mod:`~beam_pipelines.feeds.publish` writes to a destination named by URI,
read by :func:`transforms.sources.uri.parse_uri` exactly as sources read it;
:mod:`~beam_pipelines.feeds.delivery` holds what the producers share (pacing, delivery reports).
Nothing here imports the CLI.
"""

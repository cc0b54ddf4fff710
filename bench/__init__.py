"""Benchmarks and long trials; nothing here is imported by the library.

- ``python -m bench`` (``make bench``): every throughput ratio of issue 15 in one table
  with peak RSS (``__main__``), each side in its own process (``sides``, measured by
  ``measure``) against the hand-written loops in ``loops`` and the bare decoders in
  ``bare_decode``; results in ``results/throughput.json``.
- ``bench_sentiment``, ``bench_telemetry``, ``bench_decode``, ``bench_sources``,
  ``bench_streaming``: single benchmarks, both sides in one process.
- ``soak`` (``make soak``) and ``pubsub_guarantee``: long streaming runs and delivery
  checks; ``streaming`` drives a streaming pipeline from outside (``bench_streaming``,
  the streaming integration tests).
"""

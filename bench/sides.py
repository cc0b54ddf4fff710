"""One side of a benchmark, run by ``python -m bench`` in its own process.

    python -m bench.sides KIND RESULT_JSON ARGS...

Each side imports only what it needs (a loop never loads the pipelines' modules),
does its work, and writes ``RESULT_JSON``: ``finished_at`` (``time.time()`` when the
work ended), ``records``, ``own_peak_rss_mib`` (its VmHWM then) and what else it
counted. Kinds:

==========================  ====================================================
``sentiment-pipeline``      BOOTSTRAP TOPIC LAKE [PIPELINE FLAGS...]
``sentiment-loop``          BOOTSTRAP TOPIC PARTITIONS LAKE
``telemetry-pipeline``      SOURCE_PARQUET LAKE
``telemetry-loop``          SOURCE_PARQUET LAKE
``decode-pipeline``         SUBJECT VALUES_PICKLE (``seconds``: the pipeline alone)
``decode-bare``             SUBJECT VALUES_PICKLE (``seconds``: the loop alone)
==========================  ====================================================
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["SIDES", "main"]


def _summary(summary: Any) -> dict[str, Any]:
    return {
        "records": getattr(summary, "records_in", None),
        "valid": getattr(summary, "valid", None),
        "dead_letters": getattr(summary, "dead_letters", None),
        "summary_type": type(summary).__name__,
    }


def sentiment_flags(bootstrap: str, topic: str, lake: str) -> list[str]:
    """The sentiment pipeline's flags for a bounded local run of ``topic`` into ``lake``."""
    return [
        f"--source=kafka://{bootstrap}/{topic}",
        f"--output={lake}/output",
        f"--dlq={lake}/dlq",
        "--bounded",
        "--runner=direct",
    ]


def telemetry_flags(source: str, lake: str) -> list[str]:
    """The telemetry pipeline's flags for a bounded local run of a Parquet replay file."""
    return [
        f"--source=file://{source}",
        f"--output={lake}/windows",
        f"--readings_output={lake}/readings",
        f"--late_output={lake}/late",
        f"--dlq={lake}/dlq",
        "--bounded",
        "--runner=direct",
    ]


def sentiment_pipeline(bootstrap: str, topic: str, lake: str, *flags: str) -> dict[str, Any]:
    from beam_pipelines import sentiment

    return _summary(sentiment.run([*sentiment_flags(bootstrap, topic, lake), *flags]))


def sentiment_loop(bootstrap: str, topic: str, partitions: str, lake: str) -> dict[str, Any]:
    from bench.loops import sentiment_loop as loop

    counts = loop(bootstrap, topic, int(partitions), lake)
    return {"records": counts["read"], "valid": counts["written"], **counts}


def telemetry_pipeline(source: str, lake: str) -> dict[str, Any]:
    from beam_pipelines import telemetry

    return _summary(telemetry.run(telemetry_flags(source, lake)))


def telemetry_loop(source: str, lake: str) -> dict[str, Any]:
    from bench.loops import telemetry_loop as loop

    counts = loop(source, lake)
    return {"records": counts["read"], "valid": counts["written"], **counts}


def decode_pipeline(subject: str, path: str) -> dict[str, Any]:
    import pickle

    from bench.bench_decode import in_pipeline

    count = len(pickle.loads(Path(path).read_bytes()))
    started = time.perf_counter()
    in_pipeline(subject, Path(path), count)
    return {"records": count, "seconds": time.perf_counter() - started}


def decode_bare(subject: str, path: str) -> dict[str, Any]:
    import pickle

    from bench.bare_decode import bare_avro, bare_json

    values = pickle.loads(Path(path).read_bytes())
    loop = bare_avro if subject == "vehicle_telemetry" else bare_json
    started = time.perf_counter()
    count = loop(values)
    return {"records": count, "seconds": time.perf_counter() - started}


def _own_peak_mib() -> float:
    """This process's high-water resident size (VmHWM), read before it exits: a side too
    short for the parent's sampling still reports its peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


SIDES: dict[str, Callable[..., dict[str, Any]]] = {
    "sentiment-pipeline": sentiment_pipeline,
    "sentiment-loop": sentiment_loop,
    "telemetry-pipeline": telemetry_pipeline,
    "telemetry-loop": telemetry_loop,
    "decode-pipeline": decode_pipeline,
    "decode-bare": decode_bare,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] not in SIDES:
        print(f"usage: python -m bench.sides {{{','.join(SIDES)}}} RESULT_JSON ARGS...")
        return 2
    kind, result_path, rest = args[0], args[1], args[2:]
    result = SIDES[kind](*rest)
    result["finished_at"] = time.time()
    result["own_peak_rss_mib"] = _own_peak_mib()
    Path(result_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

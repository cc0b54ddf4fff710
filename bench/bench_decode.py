"""Benchmark: decode + validate records/s on one core, Avro and JSON, against bare libraries.

    python -m bench.bench_decode [--count 100000] [--repeat 3]

For each format, on the same Confluent-framed messages in one run:
(a) the bare libraries in a loop: strip the 5-byte header, fastavro
    ``schemaless_reader`` with writer and reader schema / ``json.loads`` plus a
    compiled fastjsonschema validator;
(b) our ``RecordDecoder.decode`` (framing checks, id lookup, subject and
    reserved-field checks, dead-letter reasons);
(c) ``DecodeAndValidate`` in a Beam pipeline on the in-process FnApiRunner
    (one worker thread): Records made from the values in the worker, in batches of
    1,000 as the pipelines' sources emit them, decoded,
    counted; (c0) the same pipeline with an identity step instead of the decoder,
    which is Beam's own cost for these records.
Prints records/s for each (best of ``--repeat``) and the ratios b/a, c/a and c/c0.
(The values are read from a file in the worker: ``beam.Create`` of 100k elements
would measure pickling and bz2 of the pipeline proto instead.)
"""

from __future__ import annotations

import argparse
import functools
import pickle
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import apache_beam as beam
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from beam_pipelines.feeds.telemetry import generate_telemetry
from beam_pipelines.feeds.tweets import generate_tweets
from bench.bare_decode import REGISTRY, bare_avro, bare_json
from transforms.batches import Batch
from transforms.record import make_record
from transforms.validate import DecodeAndValidate, RecordDecoder


def _best(repeat: int, run: Callable[[], int]) -> float:
    """Records/s of the fastest of ``repeat`` runs."""
    best = 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        count = run()
        best = max(best, count / (time.perf_counter() - started))
    return best


def ours(subject: str, values: Sequence[bytes]) -> int:
    decoder = RecordDecoder(REGISTRY, REGISTRY.latest(subject))
    for value in values:
        decoder.decode(value)
    return len(values)


class _RecordsFromFile(beam.DoFn):
    """Yields the values pickled in the file named by the element as Records, in
    batches of 1,000 as the pipelines' sources hand them on (see transforms.batches)."""

    def process(self, path: str) -> Iterator[Batch]:
        values = pickle.loads(Path(path).read_bytes())
        for first in range(0, len(values), _BATCH):
            yield Batch(
                make_record(
                    source="kafka",
                    stream="t",
                    partition=0,
                    position=n,
                    value=value,
                    event_time_ms=n,
                )
                for n, value in enumerate(values[first : first + _BATCH], start=first)
            )


_BATCH = 1000


def in_pipeline(subject: str | None, path: Path, count: int) -> int:
    """Reads, decodes (identity when ``subject`` is None) and counts ``count`` records."""
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        records = (
            pipeline
            | beam.Create([str(path)])
            | beam.ParDo(_RecordsFromFile()).with_output_types(Batch)
        )
        if subject is None:
            rows = records | beam.Map(lambda batch: batch).with_output_types(Batch)
        else:
            rows, _ = records | DecodeAndValidate(REGISTRY, subject=subject)
        _ = rows | beam.Map(len) | beam.CombineGlobally(sum)
    return count


def decode_inputs(count: int) -> tuple[list[bytes], list[bytes]]:
    """``count`` Confluent-framed telemetry values (Avro) and tweets (JSON), all good."""
    avro = [m.value for m in generate_telemetry(count, vehicles=50) if m.value]
    tweets = generate_tweets(
        count,
        bad_ratio=0.0,
        schema=REGISTRY.latest("tweet"),
        other=REGISTRY.latest("vehicle_telemetry"),
    )
    return avro, [m.value for m in tweets if m.value]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_decode")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    avro, json_values = decode_inputs(args.count)
    print(f"{args.count} Confluent-framed messages per format, best of {args.repeat}, one core")
    print(
        f"{'format':6} {'(a) bare libs':>14} {'(b) decoder':>12} {'(c) pipeline':>13} "
        f"{'(c0) identity':>14} {'b/a':>5} {'c/a':>5} {'c/c0':>5}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        for name, subject, values, bare in (
            ("avro", "vehicle_telemetry", avro, bare_avro),
            ("json", "tweet", json_values, bare_json),
        ):
            path = Path(scratch) / f"{name}.pickle"
            path.write_bytes(pickle.dumps(values))
            n = len(values)
            a = _best(args.repeat, functools.partial(bare, values))
            b = _best(args.repeat, functools.partial(ours, subject, values))
            c = _best(args.repeat, functools.partial(in_pipeline, subject, path, n))
            c0 = _best(args.repeat, functools.partial(in_pipeline, None, path, n))
            print(
                f"{name:6} {a:14,.0f} {b:12,.0f} {c:13,.0f} {c0:14,.0f} "
                f"{b / a:5.2f} {c / a:5.2f} {c / c0:5.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

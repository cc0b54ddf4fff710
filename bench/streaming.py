"""Driving a streaming pipeline from outside: a subprocess, timed produces, table watches.

Used by ``bench.bench_streaming`` (latency figures) and the streaming integration
tests. The produce time of each record is taken when its produce call is made;
the time it becomes visible is when a poll of the Delta tables first finds its
(partition, position) in any of them.
"""

from __future__ import annotations

import functools
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from beam_pipelines.feeds.tweets import GeneratedMessage

__all__ = ["Stopped", "StreamingProcess", "TableWatcher", "TimedProducer", "percentile"]

Key = tuple[str, str]  # (partition, position) as the tables store them


class TimedProducer:
    """Produces messages and remembers when each one was produced, by (partition, offset)."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.topic = topic
        self.produced_at: dict[Key, float] = {}
        self.values: dict[Key, bytes | None] = {}
        self._producer = Producer(
            {"bootstrap.servers": bootstrap_servers, "linger.ms": 5, "acks": "all"}
        )

    def send(
        self, messages: Iterable[GeneratedMessage], *, partitions: Sequence[int] = ()
    ) -> list[Key]:
        """Produces ``messages``; returns their keys once all are delivered.

        ``partitions``: spread the messages over these partitions in turn (by
        default the producer's partitioner picks, by key).
        """
        sent: list[Key] = []
        failures: list[str] = []

        def delivered(err: object, message: object, *, at: float) -> None:
            if err is not None:
                failures.append(str(err))
                return
            key = (str(message.partition()), str(message.offset()))  # type: ignore[attr-defined]
            self.produced_at[key] = at
            self.values[key] = message.value()  # type: ignore[attr-defined]
            sent.append(key)

        for number, message in enumerate(messages):
            at = time.time()
            partition = partitions[number % len(partitions)] if partitions else -1  # -1: any
            self._producer.produce(
                self.topic,
                partition=partition,
                key=message.key,
                value=message.value,
                timestamp=message.timestamp_ms,
                on_delivery=functools.partial(delivered, at=at),
            )
            self._producer.poll(0)
        self._producer.flush(30)
        if failures:
            raise RuntimeError(f"{len(failures)} messages not delivered: {failures[:1]}")
        return sent


class TableWatcher:
    """Polls Delta tables; remembers when each (partition, position) first appeared.

    Each poll reads only the data files committed since the last one (a compaction's
    removed files are subtracted), so its cost does not grow with the tables: a fault
    trial that polls every quarter second for half an hour leaves the CPU to the pipeline.
    """

    def __init__(self, tables: Sequence[str]) -> None:
        self.tables = list(tables)
        self.seen_at: dict[Key, float] = {}
        self.copies: Counter[Key] = Counter()
        self._handles: dict[str, Any] = {}
        self._versions: dict[str, int] = {}
        self._files: dict[str, dict[str, Counter[Key]]] = {}  # table -> file -> its keys

    def poll(self) -> None:
        now = time.time()
        for uri in self.tables:
            table = self._open(uri)
            if table is None or self._versions.get(uri) == table.version():
                continue
            self._versions[uri] = table.version()
            files = self._files.setdefault(uri, {})
            current = set(table.file_uris())
            for gone in set(files) - current:
                self.copies.subtract(files.pop(gone))
            for path in sorted(current - set(files)):
                keys = _keys_in(path)
                files[path] = keys
                self.copies.update(keys)
                for key in keys:
                    self.seen_at.setdefault(key, now)
        self.copies = +self.copies  # drops keys whose count went to 0

    def wait_for(self, keys: Iterable[Key], *, timeout_s: float, every_s: float = 0.1) -> bool:
        """Polls until every key is visible (True) or ``timeout_s`` passes (False)."""
        wanted = set(keys)
        deadline = time.monotonic() + timeout_s
        while True:
            self.poll()
            if wanted <= self.seen_at.keys():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(every_s)

    def _open(self, uri: str) -> Any:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        handle = self._handles.get(uri)
        if handle is not None:
            handle.update_incremental()
            return handle
        try:
            handle = self._handles[uri] = DeltaTable(uri)
        except TableNotFoundError:
            return None
        return handle


def _keys_in(path: str) -> Counter[Key]:
    """The (partition, position) of every row of one data file."""
    import pyarrow.parquet as pq

    columns = pq.read_table(path, columns=["_partition", "_position"]).to_pydict()
    return Counter(zip(columns["_partition"], columns["_position"], strict=True))


@dataclass
class Stopped:
    """How a streaming process ended after its stop signal."""

    exit_code: int
    stop_s: float
    stdout: str
    stderr: str


@dataclass
class StreamingProcess:
    """``python -m MODULE ARGS`` started in its own process group, stopped with SIGINT.

    Its output goes to temporary files (a pipe nobody reads would fill up and stall it).
    """

    module: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    _process: subprocess.Popen | None = None
    _out: Any = None
    _err: Any = None

    def start(self) -> StreamingProcess:
        self._out = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in _outputs)
        self._err = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            stdout=self._out,
            stderr=self._err,
            text=True,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        return self

    def peak_rss_mb(self) -> float:
        """The process's peak resident memory so far (Linux ``VmHWM``), in MiB; 0 if unknown."""
        assert self._process is not None
        try:
            status = Path(f"/proc/{self._process.pid}/status").read_text()
        except OSError:
            return 0.0
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    @property
    def exit_code(self) -> int | None:
        """Its exit status once it ended (negative: the signal that ended it), else None."""
        return None if self._process is None else self._process.poll()

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, *, timeout_s: float = 60.0) -> Stopped:
        """Sends SIGINT (Ctrl-C) and waits; kills the group if it outlives ``timeout_s``."""
        assert self._process is not None
        started = time.monotonic()
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        took = time.monotonic() - started
        return Stopped(self._process.returncode, took, *self._outputs())

    def signal_group(self, sig: int) -> None:
        """Sends ``sig`` to the process and its children (SIGSTOP / SIGCONT, say)."""
        assert self._process is not None
        if self.running():
            os.killpg(self._process.pid, sig)

    def kill(self) -> None:
        if self.running():
            assert self._process is not None
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def _outputs(self) -> tuple[str, str]:
        texts = []
        for stream in (self._out, self._err):
            stream.seek(0)
            texts.append(stream.read())
            stream.close()
        return texts[0], texts[1]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([1.0, 2.0, 3.0, 4.0], 0.99)
    (2.0, 4.0)
    """
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

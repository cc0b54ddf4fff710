"""Runs one side of a benchmark in a fresh process: its wall time and its peak memory.

The time runs from just before the process is spawned to the moment the child says
its work is done (so interpreter start, imports and pipeline construction count, and
the parent's checks afterwards do not). The child writes a JSON result file whose
``finished_at`` is that moment (``time.time()``).

Peak RSS is read from ``/proc`` every 50 ms while the child runs, over the child and
all its descendants (Beam's multi-processing workers): the larger of each process's own
high-water mark (``VmHWM``, exact for a single process but for its last 50 ms) and the
largest sum of the tree's resident sizes at one moment. A ``bench.sides`` child also
reports its own VmHWM as it finishes, for a run shorter than the sampling.

(``wait4``'s ``ru_maxrss`` is no use here: Linux carries the parent's size at the fork
into the child's figure across ``exec``, so every child would look at least as large
as this process.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ChildFailed", "ChildRun", "run_child", "run_side"]

_PAGE = os.sysconf("SC_PAGE_SIZE")
_MIB = 1024 * 1024


class ChildFailed(RuntimeError):
    """A measured process exited with an error."""


@dataclass(frozen=True)
class ChildRun:
    """One measured process."""

    seconds: float
    peak_rss_mib: float
    result: dict[str, Any]


def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in bytes; zeros once it is gone."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return rss, hwm


class _Sampler(threading.Thread):
    """Samples the memory of a process tree until stopped; ``peak`` is in bytes."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.tree_peak, self.processes = pid, 0, 1
        self.hwm: dict[int, int] = {}
        self._stop_event = threading.Event()

    @property
    def peak(self) -> int:
        return max(self.tree_peak, *self.hwm.values(), 0)

    def sample(self) -> None:
        tree, total, todo = _children_of(), 0, [self.pid]
        while todo:
            pid = todo.pop()
            todo.extend(tree.get(pid, ()))
            rss, hwm = _memory(pid)
            total += rss
            if hwm:
                self.hwm[pid] = max(self.hwm.get(pid, 0), hwm)
        self.tree_peak = max(self.tree_peak, total)
        self.processes = max(self.processes, len(self.hwm))

    def run(self) -> None:
        while not self._stop_event.wait(0.05):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def run_child(argv: list[str], *, timeout_s: float = 3600.0) -> tuple[float, float, float]:
    """Runs ``argv``; returns its spawn and exit times (``time.time()``) and its peak RSS
    in MiB. Its output is kept and shown only when it fails (ChildFailed)."""
    with tempfile.TemporaryFile() as log:
        spawned_at = time.time()
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        sampler = _Sampler(process.pid)
        sampler.sample()
        sampler.start()
        deadline = time.monotonic() + timeout_s
        while True:
            pid, status = os.waitpid(process.pid, os.WNOHANG)
            if pid:
                exited_at = time.time()
                break
            if time.monotonic() > deadline:
                process.kill()
                pid, status = os.waitpid(process.pid, 0)
                exited_at = time.time()
                break
            time.sleep(0.005)
        process.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
        peak = sampler.peak / _MIB
        if process.returncode != 0:
            log.seek(0)
            tail = log.read().decode("utf-8", "replace")[-4000:]
            raise ChildFailed(f"{' '.join(argv)} exited {process.returncode}:\n{tail}")
    return spawned_at, exited_at, peak


def run_side(kind: str, *args: str, timeout_s: float = 3600.0) -> ChildRun:
    """Runs ``python -m bench.sides KIND ARGS...`` and reads the result it writes."""
    with tempfile.TemporaryDirectory(prefix="bench-side-") as scratch:
        result_path = Path(scratch) / "result.json"
        argv = [sys.executable, "-m", "bench.sides", kind, str(result_path), *args]
        spawned_at, _, peak = run_child(argv, timeout_s=timeout_s)
        result = json.loads(result_path.read_text())
    peak = max(peak, result.get("own_peak_rss_mib", 0.0))
    return ChildRun(result["finished_at"] - spawned_at, peak, result)

"""How our command-line processes end once their work is done.

A run leaves native thread pools behind: Arrow's CPU and I/O pools (dataset scans,
Parquet writes), delta-rs's tokio runtime, librdkafka's client threads. When the
interpreter then tears itself down, those pools are destroyed while a worker may
still be running, and now and then the process aborts *after* its work is
complete: ``terminate called without an active exception`` and exit -6 (SIGABRT).
Arrow tracks it as apache/arrow#34314 and #39862; delta-rs as delta-io/delta-rs#2184.
An exit code that says "crashed" after every commit landed is a lie a scheduler
acts on (it retries the job, pages someone).

So our ``__main__`` blocks and the ``dataplane`` command end with
:func:`exit_process`: the ``atexit`` handlers run (logging is flushed, Arrow's S3
subsystem is finalized, ...), stdout and stderr are flushed, and the process ends
with its code without the interpreter's teardown. Nothing is lost by skipping it:
every table commit, offset commit and file write has completed before ``main``
returns, and open files are closed by the kernel.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Callable
from typing import NoReturn

__all__ = ["exit_process", "run_and_exit"]


def exit_process(code: object) -> NoReturn:
    """Ends the process with ``code`` as :func:`sys.exit` would, minus the teardown.

    ``None`` is 0, an integer is the status; anything else is printed to stderr
    and the status is 1 (as :func:`sys.exit` does). The ``atexit`` handlers run first.
    """
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()  # logging.shutdown, pyarrow's S3 finalizer, ...
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(status & 0xFF)


def run_and_exit(main: Callable[[], object]) -> NoReturn:
    """``exit_process(main())``, where ``SystemExit`` raised by ``main`` (argparse's
    exit 2, ``--help``) also ends through :func:`exit_process`."""
    code: object
    try:
        code = main()
    except SystemExit as stop:
        code = stop.code
    exit_process(code)

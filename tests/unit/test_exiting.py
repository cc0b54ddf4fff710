"""How our command-line processes end: the code, the output and the atexit handlers
survive; the interpreter's teardown (where native thread pools abort) does not run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

# A script that ends through ``ending`` after leaving evidence of each part of an exit:
# a big buffered write to stdout, an atexit handler, and an object whose finalizer
# only the interpreter's teardown would run.
_SCRIPT = textwrap.dedent(
    """
    import atexit, sys
    from beam_pipelines.launch.exiting import exit_process, run_and_exit

    class Teardown:
        def __del__(self):
            sys.stderr.write("teardown ran\\n")

    held = Teardown()
    atexit.register(lambda: sys.stderr.write("atexit ran\\n"))
    sys.stdout.write("x" * 300_000 + "end\\n")   # more than a pipe holds: must be flushed
    code = eval(sys.argv[2])
    if sys.argv[1] == "exit_process":
        exit_process(code)
    elif sys.argv[1] == "run_and_exit":
        def main():
            sys.exit(code)
        run_and_exit(main)
    else:
        sys.exit(code)
    """
)


def _end(how: str, code: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, how, repr(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_teardown_runs_under_sys_exit_so_the_finalizer_is_a_real_witness():
    ended = _end("sys.exit", 0)
    assert ended.returncode == 0
    assert "teardown ran" in ended.stderr


@settings(max_examples=15, deadline=None)
@given(
    code=st.one_of(st.none(), st.integers(0, 255)),
    how=st.sampled_from(["exit_process", "run_and_exit"]),
)
def test_the_status_output_and_atexit_handlers_survive_and_the_teardown_is_skipped(code, how):
    ended = _end(how, code)
    assert ended.returncode == (code or 0)
    assert ended.stdout.endswith("x" * 1000 + "end\n")
    assert len(ended.stdout) == 300_004
    assert "atexit ran" in ended.stderr
    assert "teardown ran" not in ended.stderr


def test_a_message_is_printed_and_ends_with_status_1_as_sys_exit_does():
    ended = _end("run_and_exit", "error: --output: not writable")
    assert ended.returncode == 1
    assert "error: --output: not writable" in ended.stderr
    assert "teardown ran" not in ended.stderr


def test_a_closed_stdout_does_not_turn_into_a_traceback():
    script = _SCRIPT.replace('sys.stdout.write("x"', 'sys.stdout.close(); (lambda *a: 0)("x"')
    ended = subprocess.run(
        [sys.executable, "-c", script, "exit_process", "3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ended.returncode == 3
    assert "Traceback" not in ended.stderr


def test_the_pipeline_modules_and_the_command_end_through_it():
    """``--help`` and a missing argument through the real entry points keep their codes."""
    helped = subprocess.run(
        [sys.executable, "-m", "beam_pipelines.sentiment", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert helped.returncode == 0, helped.stderr
    assert "--source" in helped.stdout
    refused = subprocess.run(
        [sys.executable, "-c", "from runners.cli.main import entry; entry()", "schemas"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert "SUBCOMMAND" in refused.stderr

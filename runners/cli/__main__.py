"""``python -m runners.cli``: the ``dataplane`` command."""

from runners.cli.main import entry

entry()

"""The ``dataplane`` command, one module per command group.

:mod:`runners.cli.main` assembles the parser and holds :func:`~runners.cli.main.main` and
the console script's ``entry``; each group's module (``schemas``, ``broker``,
``job_service``, ``compact``, ``quality``, ``pipelines`` for ``pipelines`` and ``run``,
``graph``, ``report``, ``dlq``) adds its subcommand with an ``add_..._command(groups)``
function. The helpers several commands share live in ``tables`` (the TABLE argument and
``--storage_option``) and ``serving`` (running a server until Ctrl-C).
``python -m runners.cli`` runs the command too.
"""

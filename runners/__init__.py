"""What drives the pipelines from outside: the command line, local services, demo, test plugin.

``cli/`` is the ``dataplane`` command (schemas, broker, job-service, compact, quality,
pipelines and run, graph, report, dlq); ``local/`` the local services for development
and tests (a Kafka-protocol broker, AWS and Google Cloud emulators, a Beam job service;
the schema registry server is :mod:`schemas.server`, which ``dataplane schemas serve``
and the plugin run); ``demo.py`` the demo behind ``make demo``; ``pytest_plugin.py`` the
pytest fixtures that start those services for a test suite (the ``pytest11`` entry
point). Pipelines themselves and their launcher live in ``beam_pipelines``.
"""

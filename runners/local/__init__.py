"""Local services for development and the tests, each a process on a free loopback port.

:mod:`~runners.local.process` has their base (``LocalService``, started and stopped by
PID) and ``free_port``; :mod:`~runners.local.broker` the embedded Kafka-protocol broker
(Tansu); :mod:`~runners.local.aws` moto and kinesalite; :mod:`~runners.local.gcp` the
Cloud Storage and Pub/Sub emulators; :mod:`~runners.local.job_service` a Beam job
service for PortableRunner whose streaming jobs fire their timers (``dataplane
job-service``) and ``LocalJobService``, which starts it or Beam's own.
"""

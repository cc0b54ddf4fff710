"""Checkpoints: what the tables record of their sources, read by sources and written by sinks.

:mod:`~transforms.checkpoint.frontier` (per partition, the position up to which
every record is committed, from the records' ``prev_position`` chains),
:mod:`~transforms.checkpoint.log` (where a table's checkpoint lives in its Delta log,
and ``ResumeFrom``, where a source resumes), :mod:`~transforms.checkpoint.table`
(the table handle and conflict backoff), :mod:`~transforms.checkpoint.storage`
(object-store settings) and :mod:`~transforms.checkpoint.group_offsets` (Kafka
consumer-group offsets that follow a table's checkpoints).
"""

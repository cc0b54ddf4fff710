"""LocalBatchRunner: Beam's in-process FnApiRunner with flattens inside one stage fused.

``--runner=direct`` with a bounded source runs here. Beam's FnApiRunner (2.77)
executes every Flatten of more than one input in the runner: each input is
written to a buffer in memory, and the steps after the Flatten read the whole
buffer once the stage that wrote it has finished. A pipeline that flattens its
dead letters (every pipeline of this library does: decode, clean and score each
reject records) so held every dead letter of a run in memory at once, original
bytes included: a bounded run over 200 MB of records that were all rejected
peaked at 1.5 GiB.

Here, after Beam's fusion, a Flatten whose inputs are all written by one stage,
and whose reading stage reads nothing else, is fused instead: the Flatten runs
in that stage (the SDK harness executes Flattens like any other step) and the
steps after it run there too, element by element. Every other Flatten is
materialized as Beam does.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.portability.fn_api_runner import translations
from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner
from apache_beam.runners.worker import bundle_processor

__all__ = ["LocalBatchRunner", "fuse_flattens"]

_FLATTEN = common_urns.primitives.FLATTEN.urn
_WRITE, _READ = bundle_processor.DATA_OUTPUT_URN, bundle_processor.DATA_INPUT_URN


class LocalBatchRunner(FnApiRunner):
    """Beam's FnApiRunner, with Flattens inside one stage run in that stage.

    Example:
        >>> import apache_beam as beam
        >>> with beam.Pipeline(runner=LocalBatchRunner()) as p:
        ...     numbers = p | beam.Create([1, 2, 3])
        ...     odd = numbers | "Odd" >> beam.Filter(lambda n: n % 2)
        ...     even = numbers | "Even" >> beam.Filter(lambda n: not n % 2)
        ...     both = (odd, even) | beam.Flatten() | beam.Map(lambda n: n * 10)
        ...     _ = both | beam.combiners.ToList() | beam.Map(lambda ns: print(sorted(ns)))
        [10, 20, 30]
    """

    def create_stages(
        self, pipeline_proto: beam_runner_api_pb2.Pipeline
    ) -> tuple[translations.TransformContext, list[translations.Stage]]:
        # Beam's phases (FnApiRunner.create_stages), with fuse_flattens after the fusion.
        return translations.create_and_optimize_stages(
            copy.deepcopy(pipeline_proto),
            phases=[
                translations.annotate_downstream_side_inputs,
                translations.fix_side_input_pcoll_coders,
                translations.pack_combiners,
                translations.lift_combiners,
                translations.expand_sdf,
                translations.expand_gbk,
                translations.sink_flattens,
                translations.greedily_fuse,
                fuse_flattens,
                translations.read_to_impulse,
                translations.impulse_to_input,
                translations.sort_stages,
                translations.add_impulse_to_dangling_transforms,
                translations.setup_timer_mapping,
                translations.populate_data_channel_coders,
            ],
            known_runner_urns=frozenset(
                [common_urns.primitives.FLATTEN.urn, common_urns.primitives.GROUP_BY_KEY.urn]
            ),
            use_state_iterables=self._use_state_iterables,
            is_drain=self._is_drain,
        )


def fuse_flattens(stages: Any, context: translations.TransformContext) -> list[translations.Stage]:
    """A fusion phase: each materialized Flatten that can run inside its writers' stage does.

    It can when every input of the Flatten is written by one stage and the stage
    reading the Flatten's buffer reads nothing else (no other buffer, no side
    input) and follows nothing but that stage and what that stage follows.
    """
    stages = list(stages)
    writes: dict[bytes, list[tuple[translations.Stage, Any]]] = defaultdict(list)
    reads: dict[bytes, list[tuple[translations.Stage, Any]]] = defaultdict(list)
    for stage in stages:
        for transform in stage.transforms:
            if transform.spec.urn == _WRITE:
                writes[transform.spec.payload].append((stage, transform))
            elif transform.spec.urn == _READ:
                reads[transform.spec.payload].append((stage, transform))
    for buffer_id, written in writes.items():
        if len(written) < 2 or len(reads.get(buffer_id, ())) != 1:
            continue  # one input: not a Flatten's buffer
        writer = written[0][0]
        ((reader, read),) = reads[buffer_id]
        if not _fusable(writer, reader, written, stages):
            continue
        flatten = beam_runner_api_pb2.PTransform(
            unique_name=read.unique_name.rsplit("/", 1)[0],
            spec=beam_runner_api_pb2.FunctionSpec(urn=_FLATTEN),
            inputs={f"in{i}": next(iter(w.inputs.values())) for i, (_, w) in enumerate(written)},
            outputs=dict(read.outputs),
        )
        fused = translations.Stage(
            f"({writer.name})+({reader.name})",
            [t for t in writer.transforms if t.spec.payload != buffer_id or t.spec.urn != _WRITE]
            + [flatten]
            + [t for t in reader.transforms if t is not read],
            translations.union(writer.downstream_side_inputs, reader.downstream_side_inputs),
            frozenset(writer.must_follow | (reader.must_follow - {writer})),
            parent=writer.parent,
            environment=writer.environment,
            forced_root=writer.forced_root,
        )
        stages = [fused if s is writer else s for s in stages if s is not reader]
        for stage in stages:
            if writer in stage.must_follow or reader in stage.must_follow:
                stage.must_follow = frozenset(
                    fused if s in (writer, reader) else s for s in stage.must_follow
                )
        # The buffers' writers and readers moved: look again from the start.
        return fuse_flattens(stages, context)
    return stages


def _fusable(
    writer: translations.Stage,
    reader: translations.Stage,
    written: list[tuple[translations.Stage, Any]],
    stages: list[translations.Stage],
) -> bool:
    if reader is writer or any(stage is not writer for stage, _ in written):
        return False
    if sum(t.spec.urn == _READ for t in reader.transforms) != 1 or any(reader.side_inputs()):
        return False
    if reader.forced_root or not reader.must_follow <= (writer.must_follow | {writer}):
        return False
    # Nothing else may have to run between the writer and the reader.
    return not any(writer in s.must_follow and reader in _after(s, stages) for s in stages)


def _after(stage: translations.Stage, stages: list[translations.Stage]) -> set[Any]:
    """The stages that must follow ``stage``, directly or not."""
    found: set[Any] = set()
    todo = [stage]
    while todo:
        current = todo.pop()
        for other in stages:
            if current in other.must_follow and other not in found:
                found.add(other)
                todo.append(other)
    return found

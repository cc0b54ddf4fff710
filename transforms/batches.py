"""Batches: many elements carried as one, so per-element costs are paid once per batch.

A runner hands every element of a PCollection to every step one at a time: on
Beam's Python runners each hand-over, metric update and timestamp costs a few
microseconds, which for cheap per-record work is most of the time spent.
:class:`PackBatches` packs each bundle's elements into :class:`Batch` elements
(one per window, at most ``max_size`` each); the row-wise transforms of this
library (decoding, text cleaning, sentiment, the sinks) take either rows or
batches: a batch in gives a batch out, with the same rows in the same order, and
each rejected row still becomes its own dead letter. :class:`Unbatch` turns
batches back into elements.

A batch has the earliest timestamp of its elements, so it is never later than
any of them for the watermark; steps that need each element's own event time
(windowing) come after an :class:`Unbatch`, or restamp their rows themselves.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput
from apache_beam.utils.windowed_value import WindowedValue

from schemas.errors import ConfigError

__all__ = [
    "DEFAULT_BATCH_ELEMENTS",
    "Batch",
    "PackBatches",
    "RowWise",
    "Unbatch",
    "is_batched",
    "items_of",
    "same_face",
    "split_batch",
]

DEFAULT_BATCH_ELEMENTS = 1000


class Batch(list):
    """Elements of one window, in order, carried through a pipeline as one element.

    >>> b = Batch([{"n": 1}, {"n": 2}])
    >>> len(b), isinstance(b, list), items_of(b) is b, items_of({"n": 3})
    (2, True, True, [{'n': 3}])
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        return (Batch, (list(self),))


class _BatchCoder(beam.coders.Coder):
    """Pickles a batch's items; its size estimate (Beam samples element sizes for its
    metrics) pickles one item, not the whole batch."""

    def encode(self, value: Batch) -> bytes:
        return pickle.dumps(list(value), pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes) -> Batch:
        return Batch(pickle.loads(encoded))

    def estimate_size(self, value: Batch) -> int:
        if not value:
            return 8
        return 8 + len(value) * len(pickle.dumps(value[0], pickle.HIGHEST_PROTOCOL))

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self) -> Any:
        return Batch


beam.coders.registry.register_coder(Batch, _BatchCoder)


def is_batched(elements: beam.PCollection) -> bool:
    """Whether ``elements`` is a PCollection of :class:`Batch` (typed so by its producer)."""
    return elements.element_type is Batch


def same_face(transform: Any, elements: beam.PCollection) -> Any:
    """``transform`` (a ParDo or Map) typed to output batches when ``elements`` are batches.

    The row-wise transforms use it so that batches in give a PCollection typed as
    batches out (Beam then picks :class:`Batch`'s coder for it).
    """
    return transform.with_output_types(Batch) if is_batched(elements) else transform


def items_of(element: Any) -> list[Any]:
    """The elements a PCollection element stands for: a batch's items, or the element."""
    return element if isinstance(element, Batch) else [element]


def split_batch(batch: Batch, one: Callable[[Any], Any]) -> tuple[Batch, list[TaggedOutput]]:
    """``one`` applied to every item: the results in order, and the tagged outputs apart.

    ``one`` returns an item's result, or a ``TaggedOutput`` (a dead letter) for an
    item it rejects; rejected items leave no gap in the results.

    >>> kept, letters = split_batch(Batch([1, -2, 3]),
    ...                             lambda n: n * 10 if n > 0 else TaggedOutput("bad", n))
    >>> kept, [(t.tag, t.value) for t in letters]
    ([10, 30], [('bad', -2)])
    """
    kept, letters = Batch(), []
    for item in batch:
        result = one(item)
        if isinstance(result, TaggedOutput):
            letters.append(result)
        else:
            kept.append(result)
    return kept, letters


class RowWise(beam.DoFn):
    """A DoFn whose work is one element at a time, for elements and batches alike.

    Subclasses implement :meth:`one`; a batch in gives the batch of results out
    (in order), and each rejected element's ``TaggedOutput`` goes out on its own.
    """

    def one(self, element: Any) -> Any:
        """The element's result, or a ``TaggedOutput`` (a dead letter) for it."""
        raise NotImplementedError

    def process(self, element: Any) -> Iterator[Any]:
        if isinstance(element, Batch):
            kept, letters = split_batch(element, self.one)
            self.passed(len(kept))
            yield from letters
            if kept:
                yield kept
            return
        result = self.one(element)
        if not isinstance(result, TaggedOutput):
            self.passed(1)
        yield result

    def passed(self, count: int) -> None:
        """Called with how many elements :meth:`one` accepted (to count them once)."""


class _PackDoFn(beam.DoFn):
    def __init__(self, max_size: int) -> None:
        self._max_size = max_size

    def start_bundle(self) -> None:
        self._open: dict[Any, tuple[Any, Batch]] = {}

    def process(
        self,
        element: Any,
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[WindowedValue]:
        oldest, batch = self._open.get(window, (timestamp, None))
        if batch is None:
            batch = Batch()
            self._open[window] = (timestamp, batch)
        elif timestamp < oldest:
            self._open[window] = (timestamp, batch)
            oldest = timestamp
        batch.extend(items_of(element))
        if len(batch) >= self._max_size:
            del self._open[window]
            yield WindowedValue(batch, oldest, (window,))

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for window, (oldest, batch) in self._open.items():
            yield WindowedValue(batch, oldest, (window,))
        self._open = {}


class PackBatches(beam.PTransform):
    """Packs each bundle's elements into :class:`Batch` elements of at most ``max_size``.

    A batch never waits for more elements than its bundle has: it is handed on
    when full or at the end of the bundle, so batching adds no latency beyond the
    bundle's own. Elements that are batches already are merged into the pack.

    Args:
        max_size: the most elements a batch holds.

    Raises:
        ConfigError: ``max_size`` is not positive.

    Example:
        >>> with beam.Pipeline() as p:
        ...     _ = (p | beam.Create(range(5)) | PackBatches(max_size=2)
        ...            | Unbatch() | beam.combiners.ToList()
        ...            | beam.Map(lambda xs: print(sorted(xs))))
        [0, 1, 2, 3, 4]
    """

    def __init__(self, max_size: int = DEFAULT_BATCH_ELEMENTS) -> None:
        super().__init__()
        if max_size <= 0:
            raise ConfigError("max_size", f"must be a positive number of elements, got {max_size}")
        self._max_size = max_size

    def expand(self, elements: beam.PCollection) -> beam.PCollection:
        pack = beam.ParDo(_PackDoFn(self._max_size)).with_output_types(Batch)
        return elements | "Pack" >> pack

    def display_data(self) -> dict[str, Any]:
        return {"max_size": self._max_size}


class Unbatch(beam.PTransform):
    """Turns :class:`Batch` elements back into their items (other elements pass as they are).

    Each item keeps its batch's timestamp and window.

    Example:
        >>> with beam.Pipeline() as p:
        ...     _ = (p | beam.Create([Batch(["a", "b"]), "c"]) | Unbatch()
        ...            | beam.combiners.ToList() | beam.Map(lambda xs: print(sorted(xs))))
        ['a', 'b', 'c']
    """

    def expand(self, elements: beam.PCollection) -> beam.PCollection:
        unbatch = beam.FlatMap(_items)
        if is_batched(elements):
            unbatch = unbatch.with_output_types(Any)
        return elements | "Unbatch" >> unbatch


def _items(element: Any) -> Iterable[Any]:
    return items_of(element)

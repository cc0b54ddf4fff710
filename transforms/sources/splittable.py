"""What our splittable reads share: a manual watermark, and a streaming flavour of a read.

A read's ``process`` takes its restriction tracker and :data:`MANUAL_WATERMARK`;
its streaming flavour is the same method marked as doing unbounded work per
element (:func:`unbounded`), which is what makes a runner treat its output as
unbounded.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import apache_beam as beam
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator

__all__ = ["MANUAL_WATERMARK", "unbounded"]

# The watermark parameter of every read's process: the read sets it (see advance_watermark).
MANUAL_WATERMARK = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())

_Process = TypeVar("_Process", bound=Callable[..., Any])


def unbounded(process: _Process) -> _Process:
    """A copy of ``process`` (same signature and defaults) marked as unbounded per element.

    The original stays as it was, so a bounded read class and its streaming
    subclass share one ``process``::

        class _ReadUnbounded(_Read):
            process = unbounded(_Read.process)

    >>> class Read(beam.DoFn):
    ...     def process(self, element): yield element
    >>> streaming = unbounded(Read.process)
    >>> marked = [hasattr(f, "unbounded_per_element") for f in (streaming, Read.process)]
    >>> marked
    [True, False]
    """

    @functools.wraps(process)
    def marked(*args: Any, **kwargs: Any) -> Any:
        return process(*args, **kwargs)

    return beam.DoFn.unbounded_per_element()(marked)

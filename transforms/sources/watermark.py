"""The watermark rule our sources share: it only moves forward."""

from __future__ import annotations

from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.utils.timestamp import Timestamp

__all__ = ["advance_watermark"]


def advance_watermark(watermark: ManualWatermarkEstimator, candidate: Timestamp) -> None:
    """Sets ``watermark`` to ``candidate`` unless it is already at or past it.

    >>> estimator = ManualWatermarkEstimator(None)
    >>> advance_watermark(estimator, Timestamp(10)); advance_watermark(estimator, Timestamp(5))
    >>> estimator.current_watermark()
    Timestamp(10)
    """
    current = watermark.current_watermark()
    if current is None or candidate > current:
        watermark.set_watermark(candidate)

"""Featurizers: transforms that add derived fields to decoded rows, or aggregate them."""

from transforms.featurize.bounds import Bound, CheckBounds
from transforms.featurize.event_time import ExtractEventTime
from transforms.featurize.geo import Geohash
from transforms.featurize.sentiment import ScoreSentiment
from transforms.featurize.text import CleanText
from transforms.featurize.vehicle import SpeedStats
from transforms.featurize.windowed import WindowedAggregate

__all__ = [
    "Bound",
    "CheckBounds",
    "CleanText",
    "ExtractEventTime",
    "Geohash",
    "ScoreSentiment",
    "SpeedStats",
    "WindowedAggregate",
]

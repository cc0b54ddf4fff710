"""Featurizers: transforms that add derived fields to decoded rows."""

from transforms.featurize.sentiment import ScoreSentiment
from transforms.featurize.text import CleanText

__all__ = ["CleanText", "ScoreSentiment"]

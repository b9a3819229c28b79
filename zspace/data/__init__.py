"""Data: readers per source, the in-memory ImageData, splits, tasks and batching."""

from zspace.data.dataset import ImageData, match_channels, split_indices
from zspace.data.loader import BatchLoader
from zspace.data.sources import load_data, parse_source, register_reader

__all__ = [
    "BatchLoader",
    "ImageData",
    "load_data",
    "match_channels",
    "parse_source",
    "register_reader",
    "split_indices",
]

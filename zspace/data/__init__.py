"""Data: readers per source, the in-memory ImageData, splits, tasks and batching."""

from zspace.data.dataset import SPLITS, ImageData, held_out_split, match_channels, split_indices
from zspace.data.loader import BatchLoader
from zspace.data.prepare import input_shape_of, prepare
from zspace.data.sources import load_data, parse_source

__all__ = [
    "SPLITS",
    "BatchLoader",
    "ImageData",
    "held_out_split",
    "input_shape_of",
    "load_data",
    "match_channels",
    "parse_source",
    "prepare",
    "split_indices",
]

"""Training: the generic epoch loop (``loop``) and the AE/VAE trainer on it (``trainer``)."""

from zspace.data import input_shape_of, prepare
from zspace.training.loop import SYNC_EVERY, Callback, EpochTrainer, NonFiniteLoss, Objective
from zspace.training.trainer import (
    RESUMABLE_CHANGES,
    AutoencoderObjective,
    Trainer,
    format_epoch,
    make_optimizer,
    run_training,
)

__all__ = [
    "RESUMABLE_CHANGES",
    "SYNC_EVERY",
    "AutoencoderObjective",
    "Callback",
    "EpochTrainer",
    "NonFiniteLoss",
    "Objective",
    "Trainer",
    "format_epoch",
    "input_shape_of",
    "make_optimizer",
    "prepare",
    "run_training",
]

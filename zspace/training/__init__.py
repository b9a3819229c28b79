"""Training: the generic epoch loop (``loop``) and the AE/VAE trainer on it (``trainer``)."""

from zspace.training.loop import Callback
from zspace.training.trainer import RESUMABLE_CHANGES, AutoencoderObjective, Trainer, train_run

__all__ = ["RESUMABLE_CHANGES", "AutoencoderObjective", "Callback", "Trainer", "train_run"]

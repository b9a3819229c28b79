"""Evaluation: judge decoded images in a feature space the judged model never shaped
(``zspace evaluate``, ``zspace evaluator``; docs/evaluation.md)."""

from zspace.evaluation.api import evaluate
from zspace.evaluation.evaluator import Evaluator, evaluator_info, open_evaluator

__all__ = ["Evaluator", "evaluate", "evaluator_info", "open_evaluator"]

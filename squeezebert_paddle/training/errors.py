"""The error a fine-tuning run stops with when the cause is expected and the message can say what to do."""

from ..errors import ExpectedError


class TrainingError(ExpectedError):
    """An expected failure (bad checkpoint, model that does not fit, diverged loss)."""

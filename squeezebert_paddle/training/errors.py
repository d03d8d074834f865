"""The error a fine-tuning run stops with when the cause is expected and the message can say what to do."""


class TrainingError(Exception):
    """An expected failure (bad checkpoint, model that does not fit, diverged loss)."""

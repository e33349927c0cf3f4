"""The engine: activations at sites and scores at the output, one forward pass per batch, kept in a store."""

from .capture import DEFAULT_BATCH_SIZE, RunResult, capture, run

__all__ = ["DEFAULT_BATCH_SIZE", "RunResult", "capture", "run"]

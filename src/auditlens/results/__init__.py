"""Check results: what every check returns (``check_result``), and how a result and the thresholds an
audit asserts on it reach the report without a call to say so (``recording``)."""

from .check_result import CheckResult, Example
from .recording import Metric, not_recorded, recording, register

__all__ = ["CheckResult", "Example", "Metric", "not_recorded", "recording", "register"]

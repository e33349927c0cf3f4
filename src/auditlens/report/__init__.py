"""The audit report: plain data built from the run's records, written as JSON, HTML and Markdown."""

from .compare import compare_reports
from .model import SCHEMA, build_report
from .writers import read_report, write_report

__all__ = ["SCHEMA", "build_report", "compare_reports", "read_report", "write_report"]

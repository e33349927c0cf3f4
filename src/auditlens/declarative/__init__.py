"""Declarative audits: ``*.audit.yaml`` files whose entries name a check, its arguments and ``expect:``
conditions on its result; read with yaml.safe_load, validated against a JSON Schema, checked by
``auditlens validate`` without a model."""

from .audit_file import SUFFIXES, load_audit_file, read_audit_file, schema
from .conditions import Condition, parse_condition
from .entry import AuditEntry
from .validate import validate_paths
from .yaml_source import AuditFileError, YamlSource

__all__ = ["SUFFIXES", "AuditEntry", "AuditFileError", "Condition", "YamlSource", "load_audit_file",
           "parse_condition", "read_audit_file", "schema", "validate_paths"]

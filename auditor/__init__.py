"""registry-auditor: which parts of multi-platform container images carry verified signatures."""

__version__ = "0.1.0"

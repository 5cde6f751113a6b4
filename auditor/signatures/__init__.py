"""Signature formats plug in here: the interface the orchestrator and the graph know them by."""

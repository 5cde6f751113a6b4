"""The daemon: `auditor serve` (scheduler, state, metrics, alerts, HTTP)."""

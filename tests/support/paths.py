"""Where the shared, read-only fixtures live: ``../shared/fixtures`` beside the checkout."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"

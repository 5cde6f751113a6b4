"""The report name of cosign's bundle signatures, apart from their verifier.

``format.py`` names a bundle's result before (or without) verifying it, and the verifier,
``bundle.py``, imports sigstore-python, which costs more to import than a small audit: only a
run that really meets a bundle pays for it.
"""

from __future__ import annotations

BUNDLE_FORMAT = "cosign/bundle"

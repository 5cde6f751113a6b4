"""cosign / sigstore signatures: legacy ``sha256-<hex>.sig`` simple-signing layers and sigstore
bundle v0.3 referrers, judged by the ``cosign:`` trust rules. Pure given bytes (``material.py``
is the one module that reads files)."""

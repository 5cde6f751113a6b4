"""Demo and test material: sample images, a test PKI, a local registry, the demo. Not shipped."""

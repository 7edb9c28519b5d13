"""The catalog: reading and normalising its manifests, importing a local model, placement."""

"""The validating admission webhook: cross-object checks at apply time (docs/policy.md)."""

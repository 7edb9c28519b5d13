"""Benchmarks of the operator on the local control plane. Run with `make bench`; they print figures."""

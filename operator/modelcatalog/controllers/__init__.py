"""kopf runs the operator (startup, peering, liveness); importing this package registers every controller."""

from modelcatalog.controllers import deployment, network, router, startup

__all__ = ["deployment", "network", "router", "startup"]

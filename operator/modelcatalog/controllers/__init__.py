"""kopf runs the operator (startup, peering, liveness); importing this package registers every controller."""

from modelcatalog.controllers import catalog, deployment, network, router, serverless, startup

__all__ = ["catalog", "deployment", "network", "router", "serverless", "startup"]

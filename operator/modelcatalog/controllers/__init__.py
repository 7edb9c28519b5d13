"""kopf handlers. Importing this package registers them all: `kopf run -m modelcatalog.controllers`."""

from modelcatalog.controllers import deployment, indexes, network, startup

__all__ = ["deployment", "indexes", "network", "startup"]

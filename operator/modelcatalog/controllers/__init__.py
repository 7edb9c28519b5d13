"""kopf handlers. Importing this package registers them all: `kopf run -m modelcatalog.controllers`."""

from modelcatalog.controllers import catalog, deployment, indexes, network, startup

__all__ = ["catalog", "deployment", "indexes", "network", "startup"]

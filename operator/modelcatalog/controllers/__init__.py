"""kopf handlers. Importing this package registers them all: `kopf run -m modelcatalog.controllers`."""

from modelcatalog.controllers import indexes, modeldeployment, operator, workspacenetwork

__all__ = ["indexes", "modeldeployment", "operator", "workspacenetwork"]

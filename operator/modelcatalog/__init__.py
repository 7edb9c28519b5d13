"""Model Catalog: a Kubernetes operator for a catalog of foundation models."""

GROUP = "modelcatalog.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

"""Label and annotation keys shared by the renderers, the controllers and the network policies."""

from __future__ import annotations

from modelcatalog import GROUP

MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"
COMPONENT = "app.kubernetes.io/component"
OWNER_KIND = f"{GROUP}/owner-kind"
OWNER_NAME = f"{GROUP}/owner-name"
ENDPOINT = f"{GROUP}/endpoint"
MODEL = f"{GROUP}/model"
DEPLOYMENT = f"{GROUP}/deployment"

MANAGER = "modelcatalog"

# Values of COMPONENT: NetworkPolicies select pods by these, so every endpoint, old or new, is covered.
MODEL_SERVER = "model-server"
ROUTER = "router"
MODEL_POOL = "model-pool"
SERVERLESS_GATEWAY = "serverless-gateway"

# Catalog labels, so `kubectl get catalogmodels -l ...` filters like the CLI does.
COLLECTION = f"{GROUP}/collection"
PUBLISHER = f"{GROUP}/publisher"
LICENSE = f"{GROUP}/license"
LIFECYCLE = f"{GROUP}/lifecycle"
MANAGED_COMPUTE = f"{GROUP}/managed-compute"
SERVERLESS = f"{GROUP}/serverless"
TASK_PREFIX = f"task.{GROUP}/"
FINE_TUNING_PREFIX = f"finetune.{GROUP}/"

# Annotations a user sets.
ROTATE_KEY = f"{GROUP}/rotate-key"


def managed(owner_kind: str, owner_name: str) -> dict[str, str]:
    """The labels every child object carries: who manages it and which object owns it."""
    return {
        MANAGED_BY: MANAGER,
        PART_OF: MANAGER,
        OWNER_KIND: owner_kind,
        OWNER_NAME: owner_name,
    }

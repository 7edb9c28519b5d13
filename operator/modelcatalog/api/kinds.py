"""The five kinds of the API group: names, scope, schema models, printer columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelcatalog import GROUP, VERSION
from modelcatalog.api.base import KubeModel, Status, cel
from modelcatalog.api.catalog import (
    CatalogModelSpec,
    CatalogModelStatus,
    InstanceTypeSpec,
    InstanceTypeStatus,
)
from modelcatalog.api.deployment import ModelDeploymentSpec, ModelDeploymentStatus
from modelcatalog.api.network import WorkspaceNetworkSpec, WorkspaceNetworkStatus
from modelcatalog.api.serverless import ServerlessEndpointSpec, ServerlessEndpointStatus

CATEGORY = "modelcatalog"


def column(name: str, path: str, type_: str = "string", priority: int = 0, description: str = "") -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        col["priority"] = priority
    if description:
        col["description"] = description
    return col


PHASE = column("Phase", ".status.phase")
READY = column("Ready", '.status.conditions[?(@.type=="Ready")].status')
AGE = column("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    spec: type[KubeModel]
    status: type[Status]
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    columns: tuple[dict[str, Any], ...] = ()
    scale: dict[str, str] | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    name_rules: tuple[dict[str, Any], ...] = ()  # CEL rules on metadata.name, checked at apply time

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{GROUP}/{VERSION}"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


CATALOG_MODEL = Kind(
    "CatalogModel", "catalogmodels", CatalogModelSpec, CatalogModelStatus, namespaced=False,
    short_names=("cm", "model", "models"),
    description="One model of the catalog: publisher, tasks, license, deployment options, prices, lifecycle.",
    columns=(
        column("Display Name", ".spec.displayName"),
        column("Publisher", ".spec.publisher"),
        column("Collection", ".spec.collection"),
        column("Tasks", ".status.tasks", priority=1),
        column("Managed", ".status.managed", description="Managed compute today: runtime or stage"),
        column("Serverless", ".status.serverless", description="Serverless offer today: live in N regions, retired"),
        column("Lifecycle", ".status.stage", description="The model's stage today"),
        column("Next Change", ".status.nextChange.description", priority=1, description="Next lifecycle date"),
        column("License", ".spec.license", priority=1),
        AGE,
    ),
)  # fmt: skip

INSTANCE_TYPE = Kind(
    "InstanceType", "instancetypes", InstanceTypeSpec, InstanceTypeStatus, namespaced=False,
    short_names=("it",),
    description="A GPU SKU mapped to a node pool: what one replica of a deployment gets and where it runs.",
    columns=(
        column("GPU", ".spec.gpu.model"),
        column("GPUs", ".spec.gpu.count", "integer"),
        column("GPU Memory (GiB)", ".spec.gpu.memoryGiB", "integer"),
        column("CPU", ".spec.cpu"),
        column("Memory", ".spec.memory"),
        column("Price/Hour", ".spec.pricing.perHour", priority=1, description="Per replica, in .spec.pricing.currency"),
        AGE,
    ),
)  # fmt: skip

# A ModelDeployment's name names its Deployment, Service (a DNS-1035 label: starts with a letter),
# a pod label value, and by default its endpoint and the endpoint's `<endpoint>-keys` Secret.
NAME_MAX = 47
DEPLOYMENT_NAME = cel(
    f"self.metadata.name.size() <= {NAME_MAX} && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
    f"metadata.name must be at most {NAME_MAX} characters of lower-case letters, digits and '-', starting with"
    " a letter and ending with a letter or digit (it names the model server's Service and the endpoint)",
    reason="FieldValueInvalid",
)

MODEL_DEPLOYMENT = Kind(
    "ModelDeployment", "modeldeployments", ModelDeploymentSpec, ModelDeploymentStatus,
    short_names=("md", "mdep"),
    name_rules=(DEPLOYMENT_NAME,),
    description="A catalog model on dedicated GPU replicas (managed compute) behind an authenticated endpoint.",
    columns=(
        column("Model", ".spec.model"),
        column("Instance Type", ".spec.instanceType"),
        column("Endpoint", ".status.endpoint.name"),
        column("Traffic", ".spec.trafficPercent", "integer"),
        column("Replicas", ".spec.instanceCount", "integer"),
        column("Available", ".status.readyReplicas", "integer"),
        PHASE, READY,
        column("URL", ".status.endpoint.url", priority=1),
        AGE,
    ),
    scale={"specReplicasPath": ".spec.instanceCount", "statusReplicasPath": ".status.replicas",
           "labelSelectorPath": ".status.selector"},
)  # fmt: skip

SERVERLESS_ENDPOINT = Kind(
    "ServerlessEndpoint", "serverlessendpoints", ServerlessEndpointSpec, ServerlessEndpointStatus,
    short_names=("se", "sle"),
    description="A pay-per-token API for a catalog model, served from the shared model pool.",
    columns=(
        column("Model", ".spec.model"),
        PHASE, READY,
        column("Backend", ".status.backend.kind", priority=1),
        column("URL", ".status.url", priority=1),
        AGE,
    ),
)  # fmt: skip

WORKSPACE_NETWORK = Kind(
    "WorkspaceNetwork", "workspacenetworks", WorkspaceNetworkSpec, WorkspaceNetworkStatus,
    short_names=("wsn", "wn"),
    description="The workspace's network setting: public network access, private endpoints, outbound rules.",
    columns=(
        column("Public Access", ".spec.publicNetworkAccess"),
        column("Outbound", ".spec.outbound.mode"),
        PHASE, READY,
        AGE,
    ),
)  # fmt: skip

KINDS = (CATALOG_MODEL, INSTANCE_TYPE, MODEL_DEPLOYMENT, SERVERLESS_ENDPOINT, WORKSPACE_NETWORK)

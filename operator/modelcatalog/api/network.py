"""WorkspaceNetwork: the workspace's public network access flag, private endpoints and outbound rules."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from modelcatalog.api.base import DNS_LABEL, DNS_SUBDOMAIN, KubeModel, LabelSelector, Status, Toggle, cel, validations

# Bounds keep the CEL rules within the API server's cost budget: 43 characters is the longest IPv6 CIDR.
Cidr = Annotated[str, Field(max_length=43)]
MAX_CIDRS = 64
CIDRS = validations(cel("self.all(c, isCIDR(c))", "every entry must be a CIDR such as 203.0.113.0/24"))
EMPTY_NAMESPACE_SELECTOR = (
    "an empty namespaceSelector admits every namespace of the cluster: name the namespaces in"
    " namespaceSelector.matchLabels (e.g. kubernetes.io/metadata.name: web) or matchExpressions,"
    " or leave namespaceSelector out to admit pods of this namespace by podSelector"
)


class PrivateEndpoint(KubeModel):
    """Who may reach the workspace while public access is Disabled: namespaces, pods, or address ranges."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": validations(
            cel("has(self.namespaceSelector) || has(self.podSelector) || size(self.cidrs) > 0",
                "a private endpoint needs namespaceSelector, podSelector or cidrs"),
            cel("!has(self.namespaceSelector)"
                " || (has(self.namespaceSelector.matchLabels) && size(self.namespaceSelector.matchLabels) > 0)"
                " || (has(self.namespaceSelector.matchExpressions)"
                " && size(self.namespaceSelector.matchExpressions) > 0)",
                EMPTY_NAMESPACE_SELECTOR, "namespaceSelector"),
        )
    }  # fmt: skip
    name: str = Field(pattern=DNS_LABEL, max_length=63, description="Name of the private endpoint.")
    namespace_selector: LabelSelector | None = Field(
        default=None, description="Namespaces allowed in; must name them (an empty selector is refused)."
    )
    pod_selector: LabelSelector | None = Field(
        default=None, description="Pods allowed in (within the selected namespaces, or this one)."
    )
    cidrs: list[Cidr] = Field(
        default_factory=list, max_length=MAX_CIDRS, description="Address ranges allowed in.", json_schema_extra=CIDRS
    )


class IsolationMode(StrEnum):
    DISABLED = "Disabled"
    ALLOW_INTERNET_OUTBOUND = "AllowInternetOutbound"
    ALLOW_ONLY_APPROVED_OUTBOUND = "AllowOnlyApprovedOutbound"


class RuleType(StrEnum):
    CIDR = "CIDR"
    FQDN = "FQDN"


class OutboundRule(KubeModel):
    model_config = KubeModel.model_config | {
        "json_schema_extra": validations(
            cel("self.type != 'CIDR' || isCIDR(self.destination)",
                "a CIDR rule's destination must be a CIDR such as 10.0.0.0/8", "destination"),
            cel("self.type != 'FQDN' || self.destination.matches('^(\\\\*\\\\.)?([a-z0-9-]+\\\\.)+[a-z]{2,}$')",
                "an FQDN rule's destination must be a host name such as huggingface.co or *.example.com",
                "destination"),
        )
    }  # fmt: skip
    name: str = Field(pattern=DNS_LABEL, max_length=63, description="Name of the rule.")
    type: RuleType = Field(description="CIDR or FQDN.")
    destination: str = Field(
        min_length=1, max_length=253, description="A CIDR, or a host name (FQDN, may start with *.)."
    )
    ports: list[int] = Field(
        default_factory=list, description="Destination ports; empty means all.",
        json_schema_extra={"items": {"type": "integer", "minimum": 1, "maximum": 65535}},
    )  # fmt: skip
    protocol: str = Field(default="TCP", pattern="^(TCP|UDP)$", description="TCP or UDP.")


class Outbound(KubeModel):
    model_config = KubeModel.model_config | {
        "json_schema_extra": validations(
            cel("self.mode == 'AllowOnlyApprovedOutbound' || size(self.rules) == 0",
                "outbound.rules apply only with mode AllowOnlyApprovedOutbound", "rules"),
        )
    }  # fmt: skip
    mode: IsolationMode = Field(
        default=IsolationMode.DISABLED,
        description="Disabled: no outbound isolation; AllowInternetOutbound; AllowOnlyApprovedOutbound: rules only.",
    )
    rules: list[OutboundRule] = Field(default_factory=list, max_length=128, description="Approved destinations.")


class WorkspaceNetworkSpec(KubeModel):
    """The network setting every endpoint of the workspace (namespace) follows at once."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": validations(
            cel("self.publicNetworkAccess == 'Enabled' || size(self.privateEndpoints) > 0",
                "privateEndpoints must list at least one entry when publicNetworkAccess is Disabled,"
                " or nothing could reach the workspace", "privateEndpoints"),
            cel("self.publicNetworkAccess == 'Enabled' || size(self.allowedIpRanges) == 0",
                "allowedIpRanges applies only when publicNetworkAccess is Enabled; use privateEndpoints[].cidrs",
                "allowedIpRanges"),
        )
    }  # fmt: skip
    public_network_access: Toggle = Field(
        default=Toggle.ENABLED,
        description="Enabled: reachable from anywhere (or allowedIpRanges); Disabled: only from privateEndpoints.",
    )
    allowed_ip_ranges: list[Cidr] = Field(
        default_factory=list,
        max_length=MAX_CIDRS,
        description="When public access is Enabled, only these ranges may connect; empty means any.",
        json_schema_extra=CIDRS,
    )  # fmt: skip
    private_endpoints: list[PrivateEndpoint] = Field(
        default_factory=list, max_length=32, description="Allowed in when Disabled."
    )
    outbound: Outbound = Field(default_factory=Outbound, description="Outbound isolation mode and rules.")
    tls_secret_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN,
        max_length=253,
        description="A kubernetes.io/tls Secret in this namespace (e.g. issued by cert-manager): the workspace"
        " router serves HTTPS with it on port 443, and endpoint URLs become https://.",
    )


class NetworkPhase(StrEnum):
    READY = "Ready"
    FAILED = "Failed"
    CONFLICT = "Conflict"


class WorkspaceNetworkStatus(Status):
    """Which endpoints the setting covers and the policies in force."""

    phase: NetworkPhase | None = Field(default=None, description="A one-word summary for `kubectl get`.")

    endpoints: list[str] = Field(default_factory=list, description="Endpoints (kind/name) the setting covers.")
    policies: list[str] = Field(default_factory=list, description="NetworkPolicies in force.")
    exposed_by: list[str] = Field(
        default_factory=list,
        description="With public access Disabled: objects that still expose the workspace (LoadBalancer or"
        " NodePort Services, externalIPs, Ingresses), made before the setting; admission refuses new ones.",
    )

"""A workspace's NetworkPolicies, rendered from its WorkspaceNetwork (or from the default when it has none).

The policies select pods by their component label, never by endpoint, so every model server and
router of the namespace — created before or after the setting — follows it at once, and flipping
`publicNetworkAccess` rewrites only these few objects:

- `modelcatalog-model-server-ingress` (always): model-server pods accept traffic only from the
  workspace's router pods, and from the operator namespace (health checks), on the model-server port.
- `modelcatalog-router-ingress` (always): router pods accept traffic on the router port only —
  from anywhere when public access is Enabled and `allowedIpRanges` is empty; from those ranges and
  the private endpoints when it is Enabled with ranges; from the private endpoints alone when it is
  Disabled.
- `modelcatalog-egress` (outbound modes other than Disabled): the workspace's model servers and
  routers may reach DNS, pods of their own namespace, the shared serverless pool and the API server
  (for token reviews); plus the internet except private and link-local ranges
  (AllowInternetOutbound), or the approved CIDR rules (AllowOnlyApprovedOutbound).
- `modelcatalog-egress-fqdn` (a CiliumNetworkPolicy, only when the cluster serves that API and
  there are approved FQDN rules): the FQDN rules, enforced by Cilium's DNS proxy.

Without a WorkspaceNetwork the documented default applies: public access Enabled, no outbound
isolation, and — always — model servers reachable only through the router. FQDN rules that no
policy can express are not silently dropped: `unenforced_outbound_rules` names them (those
destinations stay blocked) so the controller can say so in the `FQDNRulesEnforced` condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelcatalog import labels
from modelcatalog.api.base import Condition, ConditionStatus, LabelSelector, Toggle
from modelcatalog.api.network import (
    IsolationMode,
    OutboundRule,
    PrivateEndpoint,
    RuleType,
    WorkspaceNetworkSpec,
)
from modelcatalog.kube.resources import resource

CILIUM_POLICY_API = "cilium.io/v2"
KIND = "WorkspaceNetwork"
OWNS = (resource("networking.k8s.io/v1", "NetworkPolicy"), resource(CILIUM_POLICY_API, "CiliumNetworkPolicy"))
MODEL_SERVER_INGRESS = "modelcatalog-model-server-ingress"
ROUTER_INGRESS = "modelcatalog-router-ingress"
EGRESS = "modelcatalog-egress"
EGRESS_FQDN = "modelcatalog-egress-fqdn"
FQDN_RULES_ENFORCED = "FQDNRulesEnforced"

# Set by the API server on every namespace since Kubernetes 1.22: selects a namespace by name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

# Not "the internet": RFC 1918 private ranges, link-local (cloud metadata services), and their IPv6 peers.
PRIVATE_IPV4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
PRIVATE_IPV6 = ("fc00::/7", "fe80::/10")


@dataclass(frozen=True)
class NetworkSettings:
    """What the policies need to know about the cluster and the operator's own layout."""

    serverless_namespace: str = "modelcatalog-serverless"
    operator_namespace: str = "modelcatalog-system"
    router_port: int = 8080
    model_server_port: int = 8000
    pool_port: int = 8000
    dns_namespace: str = "kube-system"
    dns_label_key: str = "k8s-app"
    dns_label_value: str = "kube-dns"
    dns_port: int = 53
    # The API server's endpoint addresses (the `kubernetes` EndpointSlice in `default`) and port:
    # routers call TokenReview and SubjectAccessReview, which a restricted egress would otherwise block.
    api_server_cidrs: tuple[str, ...] = ()
    api_server_port: int = 6443
    # The apiVersion of a served policy kind that can express FQDN rules; only cilium.io/v2 is understood.
    fqdn_policy_api: str | None = None

    @property
    def enforces_fqdn(self) -> bool:
        return self.fqdn_policy_api == CILIUM_POLICY_API


def render_network_policies(
    namespace: str,
    spec: WorkspaceNetworkSpec | None,
    settings: NetworkSettings,
    network_name: str | None = None,
) -> list[dict[str, Any]]:
    """The desired policy objects of one workspace, in a fixed order; the same input renders the same bytes.

    `spec` None means the workspace has no WorkspaceNetwork: the default applies and the objects are
    labelled as owned by the namespace itself. With a spec, `network_name` names its WorkspaceNetwork.
    """
    if spec is not None and network_name is None:
        raise ValueError("network_name is required with a WorkspaceNetwork spec")
    effective = spec if spec is not None else WorkspaceNetworkSpec()
    owner = labels.managed("WorkspaceNetwork", network_name) if network_name else labels.managed("Namespace", namespace)
    policies = [
        _network_policy(MODEL_SERVER_INGRESS, namespace, owner, _model_server_ingress(settings)),
        _network_policy(ROUTER_INGRESS, namespace, owner, _router_ingress(effective, settings)),
    ]
    if effective.outbound.mode != IsolationMode.DISABLED:
        policies.append(_network_policy(EGRESS, namespace, owner, _egress(effective, settings)))
    fqdn_rules = _fqdn_rules(effective)
    if fqdn_rules and settings.enforces_fqdn:
        policies.append(_cilium_fqdn_policy(namespace, owner, fqdn_rules, settings))
    return policies


def unenforced_outbound_rules(spec: WorkspaceNetworkSpec | None, settings: NetworkSettings) -> list[OutboundRule]:
    """Approved rules no rendered policy carries (FQDN rules without a CNI that can express them).

    Egress is deny-by-default in AllowOnlyApprovedOutbound, so their destinations stay blocked.
    """
    if spec is None or settings.enforces_fqdn:
        return []
    return _fqdn_rules(spec)


def fqdn_rules_condition(spec: WorkspaceNetworkSpec | None, settings: NetworkSettings) -> Condition:
    """The `FQDNRulesEnforced` condition (without timestamps: the controller stamps transitions)."""
    unenforced = unenforced_outbound_rules(spec, settings)
    if unenforced:
        names = ", ".join(f"{rule.name} ({rule.destination})" for rule in unenforced)
        return Condition(
            type=FQDN_RULES_ENFORCED,
            status=ConditionStatus.FALSE,
            reason="FQDNPolicyUnsupported",
            message=(
                f"the cluster's network plugin cannot enforce FQDN rules ({CILIUM_POLICY_API} CiliumNetworkPolicy"
                f" is not served), so these destinations stay blocked: {names}; use CIDR rules instead"
            ),
        )
    if spec is not None and _fqdn_rules(spec):
        return Condition(
            type=FQDN_RULES_ENFORCED,
            status=ConditionStatus.TRUE,
            reason="EnforcedByCilium",
            message=f"FQDN rules are enforced by the CiliumNetworkPolicy {EGRESS_FQDN}",
        )
    return Condition(
        type=FQDN_RULES_ENFORCED, status=ConditionStatus.TRUE, reason="NoFQDNRules", message="no FQDN rules to enforce"
    )


def _network_policy(name: str, namespace: str, owner: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(owner)},
        "spec": spec,
    }


def _component(component: str) -> dict[str, Any]:
    return {"matchLabels": {labels.COMPONENT: component}}


def _own_pods(component: str) -> dict[str, Any]:
    """The operator's `component` pods of this namespace: a pod merely labelled as a router is not one."""
    return {"matchLabels": {labels.COMPONENT: component, labels.MANAGED_BY: labels.MANAGER}}


def _namespace_named(name: str) -> dict[str, Any]:
    return {"matchLabels": {NAMESPACE_NAME_LABEL: name}}


def _tcp(port: int) -> dict[str, Any]:
    return {"port": port, "protocol": "TCP"}


def _model_server_ingress(settings: NetworkSettings) -> dict[str, Any]:
    return {
        "podSelector": _component(labels.MODEL_SERVER),
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {"podSelector": _own_pods(labels.ROUTER)},
                    {"namespaceSelector": _namespace_named(settings.operator_namespace)},
                ],
                "ports": [_tcp(settings.model_server_port)],
            }
        ],
    }


def _router_ingress(spec: WorkspaceNetworkSpec, settings: NetworkSettings) -> dict[str, Any]:
    ports = [_tcp(settings.router_port)]
    if spec.public_network_access == Toggle.ENABLED and not spec.allowed_ip_ranges:
        rules: list[dict[str, Any]] = [{"ports": ports}]
    else:
        peers = _router_peers(spec)
        # A rule with an empty `from` admits everyone: with no peer at all, admit no one instead.
        rules = [{"from": peers, "ports": ports}] if peers else []
    return {"podSelector": _component(labels.ROUTER), "policyTypes": ["Ingress"], "ingress": rules}


def _router_peers(spec: WorkspaceNetworkSpec) -> list[dict[str, Any]]:
    peers: list[dict[str, Any]] = []
    if spec.public_network_access == Toggle.ENABLED:
        peers.extend({"ipBlock": {"cidr": cidr}} for cidr in spec.allowed_ip_ranges)
    for endpoint in spec.private_endpoints:
        peers.extend(_private_endpoint_peers(endpoint))
    return peers


def _private_endpoint_peers(endpoint: PrivateEndpoint) -> list[dict[str, Any]]:
    """A podSelector alone means pods of this namespace, as in a NetworkPolicy peer; cidrs are extra peers."""
    peers: list[dict[str, Any]] = []
    selector_peer: dict[str, Any] = {}
    if endpoint.namespace_selector is not None:
        selector_peer["namespaceSelector"] = _label_selector(endpoint.namespace_selector)
    if endpoint.pod_selector is not None:
        selector_peer["podSelector"] = _label_selector(endpoint.pod_selector)
    if selector_peer:
        peers.append(selector_peer)
    peers.extend({"ipBlock": {"cidr": cidr}} for cidr in endpoint.cidrs)
    return peers


def _label_selector(selector: LabelSelector) -> dict[str, Any]:
    """The wire form without empty fields, so an empty selector renders as {} (selects everything)."""
    wire: dict[str, Any] = {}
    if selector.match_labels:
        wire["matchLabels"] = dict(selector.match_labels)
    if selector.match_expressions:
        wire["matchExpressions"] = [
            {"key": e.key, "operator": e.operator} | ({"values": list(e.values)} if e.values else {})
            for e in selector.match_expressions
        ]
    return wire


def _workspace_pods() -> dict[str, Any]:
    return {
        "matchExpressions": [
            {"key": labels.COMPONENT, "operator": "In", "values": [labels.MODEL_SERVER, labels.ROUTER]}
        ]
    }


def _egress(spec: WorkspaceNetworkSpec, settings: NetworkSettings) -> dict[str, Any]:
    rules = _always_allowed_egress(settings)
    if spec.outbound.mode == IsolationMode.ALLOW_INTERNET_OUTBOUND:
        rules.append({"to": [_internet_ipv4(), _internet_ipv6()]})
    else:
        rules.extend(_cidr_rule(rule) for rule in spec.outbound.rules if rule.type == RuleType.CIDR)
    return {"podSelector": _workspace_pods(), "policyTypes": ["Egress"], "egress": rules}


def _always_allowed_egress(settings: NetworkSettings) -> list[dict[str, Any]]:
    dns_peer = {
        "namespaceSelector": _namespace_named(settings.dns_namespace),
        "podSelector": {"matchLabels": {settings.dns_label_key: settings.dns_label_value}},
    }
    pool_peer = {
        "namespaceSelector": _namespace_named(settings.serverless_namespace),
        "podSelector": _component(labels.MODEL_POOL),
    }
    rules: list[dict[str, Any]] = [
        {
            "to": [dns_peer],
            "ports": [
                {"port": settings.dns_port, "protocol": "UDP"},
                {"port": settings.dns_port, "protocol": "TCP"},
            ],
        },
        # Routers forward to the model servers of their own namespace (their ingress policy narrows it).
        {"to": [{"podSelector": {}}]},
        {"to": [pool_peer], "ports": [_tcp(settings.pool_port)]},
    ]
    if settings.api_server_cidrs:
        rules.append(
            {
                "to": [{"ipBlock": {"cidr": cidr}} for cidr in settings.api_server_cidrs],
                "ports": [_tcp(settings.api_server_port)],
            }
        )
    return rules


def _internet_ipv4() -> dict[str, Any]:
    return {"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_IPV4)}}


def _internet_ipv6() -> dict[str, Any]:
    return {"ipBlock": {"cidr": "::/0", "except": list(PRIVATE_IPV6)}}


def _rule_ports(rule: OutboundRule) -> list[dict[str, Any]]:
    """Empty `ports` means every port, but of the rule's protocol only."""
    if not rule.ports:
        return [{"protocol": rule.protocol}]
    return [{"port": port, "protocol": rule.protocol} for port in rule.ports]


def _cidr_rule(rule: OutboundRule) -> dict[str, Any]:
    return {"to": [{"ipBlock": {"cidr": rule.destination}}], "ports": _rule_ports(rule)}


def _fqdn_rules(spec: WorkspaceNetworkSpec) -> list[OutboundRule]:
    if spec.outbound.mode != IsolationMode.ALLOW_ONLY_APPROVED_OUTBOUND:
        return []
    return [rule for rule in spec.outbound.rules if rule.type == RuleType.FQDN]


def _cilium_fqdn_policy(
    namespace: str, owner: dict[str, str], rules: list[OutboundRule], settings: NetworkSettings
) -> dict[str, Any]:
    """Cilium learns the addresses behind a name from DNS answers, so DNS must pass through its proxy too."""
    dns_via_proxy = {
        "toEndpoints": [
            {
                "matchLabels": {
                    "k8s:io.kubernetes.pod.namespace": settings.dns_namespace,
                    f"k8s:{settings.dns_label_key}": settings.dns_label_value,
                }
            }
        ],
        "toPorts": [
            {"ports": [{"port": str(settings.dns_port), "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*"}]}}
        ],
    }
    return {
        "apiVersion": CILIUM_POLICY_API,
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": EGRESS_FQDN, "namespace": namespace, "labels": dict(owner)},
        "spec": {"endpointSelector": _workspace_pods(), "egress": [dns_via_proxy, *map(_cilium_fqdn_rule, rules)]},
    }


def _cilium_fqdn_rule(rule: OutboundRule) -> dict[str, Any]:
    match = "matchPattern" if rule.destination.startswith("*.") else "matchName"
    egress: dict[str, Any] = {"toFQDNs": [{match: rule.destination}]}
    if rule.ports:
        egress["toPorts"] = [{"ports": [{"port": str(port), "protocol": rule.protocol} for port in rule.ports]}]
    else:
        # Cilium's port 0 means every port; the protocol still narrows it as the rule says.
        egress["toPorts"] = [{"ports": [{"port": "0", "protocol": rule.protocol}]}]
    return egress

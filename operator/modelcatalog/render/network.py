"""A workspace's NetworkPolicies, rendered from its WorkspaceNetwork (or from the default when it has none).

The policies select pods by their component label, never by endpoint, so every model server and
router of the namespace — created before or after the setting — follows it at once, and flipping
`publicNetworkAccess` rewrites only these few objects:

- `modelcatalog-model-server-ingress` (always): model-server pods accept traffic only from the
  workspace's router pods, and from the operator's own pods (selected by their labels within the
  operator namespace, not the whole namespace), on the model-server port.
- `modelcatalog-router-ingress` (always): router pods accept traffic on the router port only —
  from anywhere when public access is Enabled and `allowedIpRanges` is empty; from those ranges and
  the private endpoints when it is Enabled with ranges; from the private endpoints alone when it is
  Disabled.
- `modelcatalog-egress` (always, in every outbound mode): the workspace's model servers and routers
  may reach DNS (kube-dns pods and node-local DNS caches), pods of their own namespace and the
  serverless gateway; then, per mode, every pod and every address but the baseline's (Disabled: no
  isolation, yet the cloud metadata address and the API server stay closed), the internet without
  private, shared (100.64/10), link-local and the cluster's own ranges (AllowInternetOutbound), or
  the approved CIDR rules minus the baseline's addresses (AllowOnlyApprovedOutbound). Platform
  settings lift the baseline (metadata, API server) for clusters that need it.
- `modelcatalog-router-egress` (when the API server's addresses are known): routers, and only they,
  may reach the API server (TokenReview and SubjectAccessReview).
- `modelcatalog-egress-fqdn` (a CiliumNetworkPolicy, only when the cluster serves that API and
  there are approved FQDN rules): the FQDN rules, enforced by Cilium's DNS proxy.

Without a WorkspaceNetwork the documented default applies: public access Enabled, no outbound
isolation, and — always — model servers reachable only through the router. FQDN rules that no
policy can express are not silently dropped: `unenforced_outbound_rules` names them (those
destinations stay blocked) so the controller can say so in the `FQDNRulesEnforced` condition.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
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
from modelcatalog.settings import DEFAULT_METADATA_CIDRS, DEFAULT_NODE_LOCAL_DNS_CIDRS, DEFAULT_OPERATOR_POD_LABELS

CILIUM_POLICY_API = "cilium.io/v2"
KIND = "WorkspaceNetwork"
OWNS = (resource("networking.k8s.io/v1", "NetworkPolicy"), resource(CILIUM_POLICY_API, "CiliumNetworkPolicy"))
MODEL_SERVER_INGRESS = "modelcatalog-model-server-ingress"
ROUTER_INGRESS = "modelcatalog-router-ingress"
EGRESS = "modelcatalog-egress"
ROUTER_EGRESS = "modelcatalog-router-egress"
EGRESS_FQDN = "modelcatalog-egress-fqdn"
FQDN_RULES_ENFORCED = "FQDNRulesEnforced"

# Set by the API server on every namespace since Kubernetes 1.22: selects a namespace by name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

# Not "the internet": RFC 1918 private ranges, the shared address space of RFC 6598 (pod and node
# ranges on several clouds), link-local (cloud metadata services), and their IPv6 peers. The cluster's
# own pod and Service ranges are added from NetworkSettings.cluster_cidrs.
PRIVATE_IPV4 = ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
PRIVATE_IPV6 = ("fc00::/7", "fe80::/10")
# The cloud instance metadata service (credentials live there); NodeLocal DNSCache's link-local address,
# which pods resolving through it must reach on port 53; the labels of the operator's own pods: only
# these, not every pod of the operator's namespace, may reach model servers directly (health checks).
METADATA_CIDRS = DEFAULT_METADATA_CIDRS
NODE_LOCAL_DNS_CIDRS = DEFAULT_NODE_LOCAL_DNS_CIDRS
OPERATOR_POD_LABELS = DEFAULT_OPERATOR_POD_LABELS


@dataclass(frozen=True)
class NetworkSettings:
    """What the policies need to know about the cluster and the operator's own layout."""

    serverless_namespace: str = "modelcatalog-serverless"
    operator_namespace: str = "modelcatalog-system"
    router_port: int = 8080
    model_server_port: int = 8000
    gateway_port: int = 8080  # the serverless gateway's pods (render/gateway.py)
    dns_namespace: str = "kube-system"
    dns_label_key: str = "k8s-app"
    dns_label_value: str = "kube-dns"
    dns_port: int = 53
    # Addresses of node-local DNS caches, allowed on the DNS port besides the kube-dns pods.
    dns_cidrs: tuple[str, ...] = NODE_LOCAL_DNS_CIDRS
    # The API server's endpoint addresses (the `kubernetes` EndpointSlice in `default`) and port:
    # routers call TokenReview and SubjectAccessReview; model servers have no business there.
    api_server_cidrs: tuple[str, ...] = ()
    api_server_port: int = 6443
    # The baseline closed to model servers and routers in every outbound mode, and the platform's switches
    # to lift each part of it (for clusters whose model servers need the metadata service or the API).
    metadata_cidrs: tuple[str, ...] = METADATA_CIDRS
    allow_metadata: bool = False
    allow_api_server: bool = False
    # The cluster's pod, Service and node ranges: never "the internet" (read from the cluster, plus the platform's).
    cluster_cidrs: tuple[str, ...] = ()
    operator_pod_labels: dict[str, str] = field(default_factory=lambda: dict(OPERATOR_POD_LABELS))
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
    policies.append(_network_policy(EGRESS, namespace, owner, _egress(effective, settings)))
    if settings.api_server_cidrs:
        policies.append(_network_policy(ROUTER_EGRESS, namespace, owner, _router_egress(settings)))
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
                    {
                        "namespaceSelector": _namespace_named(settings.operator_namespace),
                        "podSelector": {"matchLabels": dict(sorted(settings.operator_pod_labels.items()))},
                    },
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
        namespaces = _label_selector(endpoint.namespace_selector)
        if not namespaces:
            # Every namespace of the cluster: the CEL rules refuse it; fail closed if one gets through.
            return [{"ipBlock": {"cidr": cidr}} for cidr in endpoint.cidrs]
        selector_peer["namespaceSelector"] = namespaces
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
    closed = _baseline_closed(settings)
    mode = spec.outbound.mode
    if mode == IsolationMode.DISABLED:
        # No isolation: every pod and every address, but the baseline's.
        rules.append({"to": [{"namespaceSelector": {}}]})
        rules.append({"to": _everything_but(closed)})
    elif mode == IsolationMode.ALLOW_INTERNET_OUTBOUND:
        rules.append({"to": _everything_but([*PRIVATE_IPV4, *PRIVATE_IPV6, *settings.cluster_cidrs, *closed])})
    else:
        rules.extend(_cidr_rule(rule, closed) for rule in spec.outbound.rules if rule.type == RuleType.CIDR)
        rules = [rule for rule in rules if rule.get("to") != []]
    rules.extend(_lifted_baseline(settings))
    return {"podSelector": _workspace_pods(), "policyTypes": ["Egress"], "egress": rules}


def _baseline_closed(settings: NetworkSettings) -> list[str]:
    """What no workspace pod reaches in any mode, unless the platform lifts it."""
    closed: list[str] = []
    if not settings.allow_metadata:
        closed += settings.metadata_cidrs
    if not settings.allow_api_server:
        closed += settings.api_server_cidrs
    return closed


def _lifted_baseline(settings: NetworkSettings) -> list[dict[str, Any]]:
    """What the platform reopened: explicit rules, since the internet rules leave link-local and private out."""
    rules: list[dict[str, Any]] = []
    if settings.allow_metadata and settings.metadata_cidrs:
        rules.append({"to": [{"ipBlock": {"cidr": cidr}} for cidr in settings.metadata_cidrs]})
    if settings.allow_api_server and settings.api_server_cidrs:
        rules.append(_api_server_rule(settings))
    return rules


def _router_egress(settings: NetworkSettings) -> dict[str, Any]:
    """Routers review tokens (TokenReview, SubjectAccessReview): the API server is theirs, not the model servers'."""
    return {"podSelector": _own_pods(labels.ROUTER), "policyTypes": ["Egress"], "egress": [_api_server_rule(settings)]}


def _api_server_rule(settings: NetworkSettings) -> dict[str, Any]:
    return {
        "to": [{"ipBlock": {"cidr": cidr}} for cidr in settings.api_server_cidrs],
        "ports": [_tcp(settings.api_server_port)],
    }


def _always_allowed_egress(settings: NetworkSettings) -> list[dict[str, Any]]:
    dns_peer = {
        "namespaceSelector": _namespace_named(settings.dns_namespace),
        "podSelector": {"matchLabels": {settings.dns_label_key: settings.dns_label_value}},
    }
    gateway_peer = {
        "namespaceSelector": _namespace_named(settings.serverless_namespace),
        "podSelector": _component(labels.SERVERLESS_GATEWAY),
    }
    return [
        {
            # Node-local DNS caches listen on a link-local address, which no internet rule admits.
            "to": [dns_peer, *({"ipBlock": {"cidr": cidr}} for cidr in settings.dns_cidrs)],
            "ports": [
                {"port": settings.dns_port, "protocol": "UDP"},
                {"port": settings.dns_port, "protocol": "TCP"},
            ],
        },
        # Routers forward to the model servers of their own namespace (their ingress policy narrows it).
        {"to": [{"podSelector": {}}]},
        # Serverless requests go through the gateway (the pools admit nothing else).
        {"to": [gateway_peer], "ports": [_tcp(settings.gateway_port)]},
    ]


def _networks(cidrs: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


def _collapsed(networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network], version: int) -> list[str]:
    """The ranges of one family, merged where they overlap or touch, in address order."""
    if version == 4:
        return [
            str(n) for n in ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv4Network))
        ]
    return [str(n) for n in ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv6Network))]


def _everything_but(cidrs: Iterable[str]) -> list[dict[str, Any]]:
    """Every IPv4 and IPv6 address except `cidrs`."""
    networks = _networks(cidrs)
    peers = []
    for version, everything in ((4, "0.0.0.0/0"), (6, "::/0")):
        block: dict[str, Any] = {"cidr": everything}
        excepted = _collapsed(networks, version)
        if excepted:
            block["except"] = excepted
        peers.append({"ipBlock": block})
    return peers


def _minus(cidr: str, closed: Iterable[str]) -> list[dict[str, Any]]:
    """`cidr` as ipBlock peers without the `closed` ranges: none when a closed range covers it."""
    network = ipaddress.ip_network(cidr, strict=False)
    inside = [c for c in _networks(closed) if c.version == network.version and c.overlaps(network)]
    excepted = _collapsed(inside, network.version)
    if any(ipaddress.ip_network(e).supernet_of(network) for e in excepted):  # type: ignore[arg-type]
        return []
    block: dict[str, Any] = {"cidr": cidr}
    if excepted:
        block["except"] = excepted
    return [{"ipBlock": block}]


def _rule_ports(rule: OutboundRule) -> list[dict[str, Any]]:
    """Empty `ports` means every port, but of the rule's protocol only."""
    if not rule.ports:
        return [{"protocol": rule.protocol}]
    return [{"port": port, "protocol": rule.protocol} for port in rule.ports]


def _cidr_rule(rule: OutboundRule, closed: Iterable[str]) -> dict[str, Any]:
    """An approved range, minus the baseline: a rule for 0.0.0.0/0 does not reopen the metadata address."""
    return {"to": _minus(rule.destination, closed), "ports": _rule_ports(rule)}


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


EXPOSING_SERVICE_TYPES = ("LoadBalancer", "NodePort")


def exposing_objects(services: list[dict[str, Any]], ingresses: list[dict[str, Any]]) -> list[str]:
    """The objects that reach the workspace from outside the cluster, as `Kind/name (how)`."""
    found = []
    for service in services:
        spec = service.get("spec") or {}
        if spec.get("type") in EXPOSING_SERVICE_TYPES:
            found.append(f"Service/{service['metadata']['name']} ({spec['type']})")
        elif spec.get("externalIPs"):
            found.append(f"Service/{service['metadata']['name']} (externalIPs)")
    found += [f"Ingress/{ingress['metadata']['name']}" for ingress in ingresses]
    return sorted(found)


def exposure_condition(spec: WorkspaceNetworkSpec | None, exposing: list[str]) -> Condition:
    """PublicExposure: True while public access is Disabled and objects made before still expose the workspace."""
    if spec is None or spec.public_network_access != Toggle.DISABLED or not exposing:
        return Condition(type="PublicExposure", status=ConditionStatus.FALSE, reason="NoneFound")
    return Condition(
        type="PublicExposure",
        status=ConditionStatus.TRUE,
        reason="ExposingObjectsRemain",
        message=f"public network access is Disabled, but {', '.join(exposing)} still expose the workspace:"
        " delete them or make the Services ClusterIP (admission refuses new ones)",
    )

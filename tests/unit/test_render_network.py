"""The workspace's NetworkPolicies: who may reach the router and the model servers, and where pods may call out to."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from modelcatalog import labels
from modelcatalog.api.base import Toggle
from modelcatalog.api.crdgen import all_crds
from modelcatalog.api.network import WorkspaceNetworkSpec
from modelcatalog.render.network import (
    EGRESS,
    EGRESS_FQDN,
    MODEL_SERVER_INGRESS,
    OWNS,
    ROUTER_EGRESS,
    ROUTER_INGRESS,
    NetworkSettings,
    fqdn_rules_condition,
    render_network_policies,
    unenforced_outbound_rules,
)

NS = "team-a"
API_SERVER = "172.18.0.2"
SETTINGS = NetworkSettings(api_server_cidrs=(f"{API_SERVER}/32",), api_server_port=6443)
CILIUM = NetworkSettings(fqdn_policy_api="cilium.io/v2")
OPERATOR_PODS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "modelcatalog-system"}},
    "podSelector": {
        "matchLabels": {"app.kubernetes.io/component": "operator", "app.kubernetes.io/name": "modelcatalog"}
    },
}
ROUTER_PORT = [{"port": 8080, "protocol": "TCP"}]

PRIVATE = {
    "publicNetworkAccess": "Disabled",
    "privateEndpoints": [{"name": "frontend", "namespaceSelector": {"matchLabels": {"team": "frontend"}}}],
}
WIDE_OPEN = {
    "outbound": {
        "mode": "AllowOnlyApprovedOutbound",
        "rules": [
            {"name": "all", "type": "CIDR", "destination": "0.0.0.0/0"},
            {"name": "imds", "type": "CIDR", "destination": "169.254.169.254/32"},
        ],
    }
}
APPROVED = {
    "outbound": {
        "mode": "AllowOnlyApprovedOutbound",
        "rules": [
            {"name": "weights", "type": "CIDR", "destination": "198.51.100.0/24", "ports": [443]},
            {"name": "metrics", "type": "CIDR", "destination": "192.0.2.10/32", "protocol": "UDP"},
            {"name": "hf", "type": "FQDN", "destination": "huggingface.co", "ports": [443]},
            {"name": "cdn", "type": "FQDN", "destination": "*.hf.co"},
        ],
    }
}


def spec(**wire: Any) -> WorkspaceNetworkSpec:
    return WorkspaceNetworkSpec.model_validate(wire)


def render(network: WorkspaceNetworkSpec | None, settings: NetworkSettings = SETTINGS) -> dict[str, dict[str, Any]]:
    policies = render_network_policies(NS, network, settings, None if network is None else "net")
    return {p["metadata"]["name"]: p for p in policies}


def router_rules(network: WorkspaceNetworkSpec | None) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = render(network)[ROUTER_INGRESS]["spec"]["ingress"]
    return rules


def egress_rules(network: WorkspaceNetworkSpec) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = render(network)[EGRESS]["spec"]["egress"]
    return rules


def egress_allows_ip(
    network: WorkspaceNetworkSpec | None,
    ip: str,
    port: int,
    protocol: str = "TCP",
    settings: NetworkSettings = SETTINGS,
    component: str = labels.MODEL_SERVER,
) -> bool:
    """NetworkPolicy egress semantics for a destination outside the cluster: only ipBlock peers can match it."""
    pod = {labels.COMPONENT: component, labels.MANAGED_BY: labels.MANAGER}
    policies = [p for p in render(network, settings).values() if selects_for_egress(p["spec"], pod)]
    if not policies:
        return True
    address = ipaddress.ip_address(ip)
    for rule in [rule for policy in policies for rule in policy["spec"]["egress"]]:
        ports = rule.get("ports")
        if ports and not any(p["protocol"] == protocol and p.get("port", port) == port for p in ports):
            continue
        for peer in rule.get("to", []):
            block = peer.get("ipBlock")
            if block is None or address.version != ipaddress.ip_network(block["cidr"]).version:
                continue
            inside = address in ipaddress.ip_network(block["cidr"])
            if inside and not any(address in ipaddress.ip_network(e) for e in block.get("except", [])):
                return True
    return False


def selects_for_egress(policy: dict[str, Any], pod: dict[str, str]) -> bool:
    """Enough of label-selector semantics for the selectors these policies use."""
    if "Egress" not in policy["policyTypes"]:
        return False
    selector = policy["podSelector"]
    if not pod.items() >= selector.get("matchLabels", {}).items():
        return False
    return all(pod.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", []))


# --- the baseline: model servers only through the router, whatever the setting ----------------------------------

SETTINGS_UNDER_TEST = [
    None,
    spec(),
    spec(**PRIVATE),
    spec(allowedIpRanges=["203.0.113.0/24"]),
    spec(**APPROVED),
    spec(outbound={"mode": "AllowInternetOutbound"}),
]


@pytest.mark.parametrize("network", SETTINGS_UNDER_TEST)
def test_model_servers_take_traffic_only_from_the_router_and_the_operator(network: WorkspaceNetworkSpec | None) -> None:
    policy = render(network)[MODEL_SERVER_INGRESS]["spec"]
    assert policy["podSelector"] == {"matchLabels": {labels.COMPONENT: labels.MODEL_SERVER}}
    assert policy["policyTypes"] == ["Ingress"]
    [rule] = policy["ingress"]
    # The operator's own pods by their labels: not every pod that happens to run in its namespace.
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {labels.COMPONENT: labels.ROUTER, labels.MANAGED_BY: labels.MANAGER}}},
        OPERATOR_PODS,
    ]
    assert rule["ports"] == [{"port": 8000, "protocol": "TCP"}]


def test_ports_and_namespaces_come_from_the_settings() -> None:
    custom = NetworkSettings(
        operator_namespace="ops", model_server_port=9000, router_port=9090, operator_pod_labels={"app": "op"}
    )
    policies = {p["metadata"]["name"]: p for p in render_network_policies(NS, None, custom)}
    [model_rule] = policies[MODEL_SERVER_INGRESS]["spec"]["ingress"]
    assert model_rule["ports"] == [{"port": 9000, "protocol": "TCP"}]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}},
        "podSelector": {"matchLabels": {"app": "op"}},
    } in model_rule["from"]
    assert policies[ROUTER_INGRESS]["spec"]["ingress"] == [{"ports": [{"port": 9090, "protocol": "TCP"}]}]


# --- the default without a WorkspaceNetwork ------------------------------------------------------------------------


def test_without_a_workspace_network_the_router_is_public_and_egress_is_open_but_the_baseline() -> None:
    policies = render(None)
    assert list(policies) == [MODEL_SERVER_INGRESS, ROUTER_INGRESS, EGRESS, ROUTER_EGRESS]
    assert policies[ROUTER_INGRESS]["spec"]["ingress"] == [{"ports": ROUTER_PORT}]
    for policy in policies.values():
        assert policy["metadata"]["namespace"] == NS
        assert policy["metadata"]["labels"] == labels.managed("Namespace", NS)


def test_a_workspace_network_owns_its_policies() -> None:
    for policy in render_network_policies(NS, spec(**APPROVED), CILIUM, "net"):
        assert policy["metadata"]["labels"] == labels.managed("WorkspaceNetwork", "net")


def test_a_spec_without_its_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="network_name"):
        render_network_policies(NS, spec(), SETTINGS)


# --- inbound: the public network access flag -------------------------------------------------------------------------


def test_public_access_enabled_admits_anyone_on_the_router_port_only() -> None:
    policy = render(spec())[ROUTER_INGRESS]["spec"]
    assert policy["podSelector"] == {"matchLabels": {labels.COMPONENT: labels.ROUTER}}
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["ingress"] == [{"ports": ROUTER_PORT}]


def test_allowed_ip_ranges_narrow_public_access_and_private_endpoints_still_get_in() -> None:
    network = spec(
        allowedIpRanges=["203.0.113.0/24", "198.51.100.7/32"],
        privateEndpoints=[{"name": "vpn", "cidrs": ["10.8.0.0/16"]}],
    )
    assert router_rules(network) == [
        {
            "from": [
                {"ipBlock": {"cidr": "203.0.113.0/24"}},
                {"ipBlock": {"cidr": "198.51.100.7/32"}},
                {"ipBlock": {"cidr": "10.8.0.0/16"}},
            ],
            "ports": ROUTER_PORT,
        }
    ]


def test_public_access_disabled_admits_only_the_private_endpoints() -> None:
    assert router_rules(spec(**PRIVATE)) == [
        {"from": [{"namespaceSelector": {"matchLabels": {"team": "frontend"}}}], "ports": ROUTER_PORT}
    ]


def test_every_private_endpoint_form_becomes_a_network_policy_peer() -> None:
    network = spec(
        publicNetworkAccess="Disabled",
        privateEndpoints=[
            {"name": "ns-only", "namespaceSelector": {"matchLabels": {"team": "web"}}},
            {"name": "pods-here", "podSelector": {"matchLabels": {"app": "batch"}}},
            {
                "name": "pods-there",
                "namespaceSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
                "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["ui", "api"]}]},
            },
            {"name": "office", "cidrs": ["192.0.2.0/24", "2001:db8::/32"]},
            {"name": "mixed", "podSelector": {"matchLabels": {"app": "cli"}}, "cidrs": ["198.51.100.0/28"]},
        ],
    )
    [rule] = router_rules(network)
    assert rule["ports"] == ROUTER_PORT
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"team": "web"}}},
        # No namespaceSelector: pods of the workspace's own namespace, as NetworkPolicy reads it.
        {"podSelector": {"matchLabels": {"app": "batch"}}},
        {
            "namespaceSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["ui", "api"]}]},
        },
        {"ipBlock": {"cidr": "192.0.2.0/24"}},
        {"ipBlock": {"cidr": "2001:db8::/32"}},
        {"podSelector": {"matchLabels": {"app": "cli"}}},
        {"ipBlock": {"cidr": "198.51.100.0/28"}},
    ]


def test_with_no_peer_at_all_the_router_admits_no_one_rather_than_everyone() -> None:
    # The CEL rules forbid this spec at admission; the renderer must still fail closed if one gets through.
    unvalidated = WorkspaceNetworkSpec(public_network_access=Toggle.DISABLED)
    assert router_rules(unvalidated) == []


def test_flipping_the_flag_rewrites_only_the_router_ingress() -> None:
    endpoints = {"privateEndpoints": PRIVATE["privateEndpoints"], "outbound": {"mode": "AllowInternetOutbound"}}
    enabled = render(spec(publicNetworkAccess="Enabled", **endpoints))
    disabled = render(spec(publicNetworkAccess="Disabled", **endpoints))
    assert list(enabled) == list(disabled) == [MODEL_SERVER_INGRESS, ROUTER_INGRESS, EGRESS, ROUTER_EGRESS]
    changed = [name for name in enabled if enabled[name] != disabled[name]]
    assert changed == [ROUTER_INGRESS]
    assert enabled[ROUTER_INGRESS]["spec"]["ingress"] == [{"ports": ROUTER_PORT}]
    assert disabled[ROUTER_INGRESS]["spec"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"team": "frontend"}}}
    ]


def test_policies_select_by_label_so_every_endpoint_is_covered() -> None:
    # No policy names an endpoint or a deployment: a new endpoint is covered the moment its pods exist.
    rendered = json.dumps(render_network_policies(NS, spec(**APPROVED), CILIUM, "net"))
    assert labels.ENDPOINT not in rendered
    assert labels.DEPLOYMENT not in rendered


# --- outbound isolation ----------------------------------------------------------------------------------------------

DNS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        },
        # NodeLocal DNSCache listens on a link-local address no internet rule admits.
        {"ipBlock": {"cidr": "169.254.20.10/32"}},
    ],
    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
}
SAME_NAMESPACE: dict[str, Any] = {"to": [{"podSelector": {}}]}
GATEWAY = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "modelcatalog-serverless"}},
            "podSelector": {"matchLabels": {labels.COMPONENT: labels.SERVERLESS_GATEWAY}},
        }
    ],
    "ports": [{"port": 8080, "protocol": "TCP"}],
}


def test_outbound_disabled_is_open_to_every_pod_and_address_but_the_baseline() -> None:
    # Issue 14 item 6: with no egress policy at all, a model server reached the metadata service and the API.
    for network in [None, spec(outbound={"mode": "Disabled"})]:
        assert egress_rules(network) == [
            DNS,
            SAME_NAMESPACE,
            GATEWAY,
            {"to": [{"namespaceSelector": {}}]},
            {
                "to": [
                    {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32", f"{API_SERVER}/32"]}},
                    {"ipBlock": {"cidr": "::/0", "except": ["fd00:ec2::254/128"]}},
                ]
            },
        ]


MODES = [None, spec(outbound={"mode": "AllowInternetOutbound"}), spec(**APPROVED), spec(**WIDE_OPEN)]


@pytest.mark.parametrize("network", MODES)
def test_the_metadata_service_and_the_api_server_are_closed_to_model_servers_in_every_mode(
    network: WorkspaceNetworkSpec | None,
) -> None:
    for port in (80, 443, 6443):
        assert not egress_allows_ip(network, "169.254.169.254", port)
        assert not egress_allows_ip(network, "fd00:ec2::254", port)
        assert not egress_allows_ip(network, API_SERVER, port)
    # ...while the router, which reviews tokens, reaches the API server, and only on its port.
    assert egress_allows_ip(network, API_SERVER, 6443, component=labels.ROUTER)
    assert not egress_allows_ip(network, API_SERVER, 22, component=labels.ROUTER)
    assert not egress_allows_ip(network, "169.254.169.254", 80, component=labels.ROUTER)


@pytest.mark.parametrize("network", MODES)
def test_dns_stays_open_including_node_local_caches(network: WorkspaceNetworkSpec | None) -> None:
    for protocol in ("UDP", "TCP"):
        assert egress_allows_ip(network, "169.254.20.10", 53, protocol)


@pytest.mark.parametrize("network", MODES)
def test_the_platform_can_lift_each_part_of_the_baseline(network: WorkspaceNetworkSpec | None) -> None:
    metadata = NetworkSettings(api_server_cidrs=SETTINGS.api_server_cidrs, allow_metadata=True)
    api = NetworkSettings(api_server_cidrs=SETTINGS.api_server_cidrs, allow_api_server=True)
    assert egress_allows_ip(network, "169.254.169.254", 80, settings=metadata)
    assert not egress_allows_ip(network, API_SERVER, 6443, settings=metadata)
    assert egress_allows_ip(network, API_SERVER, 6443, settings=api)
    assert not egress_allows_ip(network, "169.254.169.254", 80, settings=api)


def test_egress_policy_covers_model_servers_and_routers() -> None:
    policy = render(spec(outbound={"mode": "AllowInternetOutbound"}))[EGRESS]["spec"]
    assert policy["policyTypes"] == ["Egress"]
    assert policy["podSelector"] == {
        "matchExpressions": [
            {"key": labels.COMPONENT, "operator": "In", "values": [labels.MODEL_SERVER, labels.ROUTER]}
        ]
    }


def test_only_the_operators_routers_reach_the_api_server() -> None:
    policy = render(spec())[ROUTER_EGRESS]["spec"]
    assert policy == {
        "podSelector": {"matchLabels": {labels.COMPONENT: labels.ROUTER, labels.MANAGED_BY: labels.MANAGER}},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": f"{API_SERVER}/32"}}], "ports": [{"port": 6443, "protocol": "TCP"}]}],
    }
    # Addresses unknown: no rule that would name none (an empty `to` admits everything).
    assert ROUTER_EGRESS not in render(spec(), NetworkSettings())


def test_allow_internet_outbound_allows_dns_the_workspace_the_gateway_and_the_public_internet() -> None:
    assert egress_rules(spec(outbound={"mode": "AllowInternetOutbound"})) == [
        DNS,
        SAME_NAMESPACE,
        GATEWAY,
        {
            "to": [
                {
                    "ipBlock": {
                        "cidr": "0.0.0.0/0",
                        "except": [
                            "10.0.0.0/8",
                            "100.64.0.0/10",
                            "169.254.0.0/16",
                            "172.16.0.0/12",
                            "192.168.0.0/16",
                        ],
                    }
                },
                {"ipBlock": {"cidr": "::/0", "except": ["fc00::/7", "fe80::/10"]}},
            ]
        },
    ]


def test_allow_internet_outbound_leaves_out_the_clusters_own_ranges() -> None:
    # Issue 14 item 7: pod and Service ranges outside RFC 1918 (and 100.64/10) are not the internet.
    network = spec(outbound={"mode": "AllowInternetOutbound"})
    settings = NetworkSettings(cluster_cidrs=("100.96.0.0/11", "198.18.0.0/15", "2001:db8:42::/56"))
    for address in ["100.64.0.10", "100.127.255.1", "198.18.3.4", "198.19.0.1", "2001:db8:42::7"]:
        assert not egress_allows_ip(network, address, 443, settings=settings), address
    assert egress_allows_ip(network, "198.20.0.1", 443, settings=settings)
    assert egress_allows_ip(network, "2001:db8:43::7", 443, settings=settings)


def test_allow_only_approved_outbound_allows_dns_the_workspace_the_gateway_and_the_cidr_rules() -> None:
    assert egress_rules(spec(**APPROVED)) == [
        DNS,
        SAME_NAMESPACE,
        GATEWAY,
        {"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}], "ports": [{"port": 443, "protocol": "TCP"}]},
        # No ports: every port, but only of the rule's protocol.
        {"to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}], "ports": [{"protocol": "UDP"}]},
    ]


def test_an_approved_rule_does_not_reopen_the_baseline() -> None:
    assert egress_rules(spec(**WIDE_OPEN))[3:] == [
        {
            "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32", f"{API_SERVER}/32"]}}],
            "ports": [{"protocol": "TCP"}],
        },
        # A rule for exactly a closed address is dropped: a rule with no peer would admit everything.
    ]
    assert egress_allows_ip(spec(**WIDE_OPEN), "203.0.113.9", 443)


MODEL_SOURCE = "18.239.50.3"  # a public address, as a weights repository has


@pytest.mark.parametrize(
    ("network", "reachable"),
    [
        (None, True),
        (spec(outbound={"mode": "Disabled"}), True),
        (spec(outbound={"mode": "AllowInternetOutbound"}), True),
        (spec(outbound={"mode": "AllowOnlyApprovedOutbound"}), False),
        (spec(**APPROVED), False),
        (
            spec(
                outbound={
                    "mode": "AllowOnlyApprovedOutbound",
                    "rules": [{"name": "src", "type": "CIDR", "destination": "18.239.50.0/24", "ports": [443]}],
                }
            ),
            True,
        ),
    ],
)
def test_the_model_source_is_reachable_only_where_the_mode_allows_it(
    network: WorkspaceNetworkSpec | None, reachable: bool
) -> None:
    assert egress_allows_ip(network, MODEL_SOURCE, 443) is reachable


def test_allow_internet_outbound_keeps_private_shared_and_metadata_addresses_out() -> None:
    network = spec(outbound={"mode": "AllowInternetOutbound"})
    assert egress_allows_ip(network, "203.0.113.9", 443)
    assert egress_allows_ip(network, "2606:4700::1111", 443)
    for private in ["10.96.0.1", "172.20.1.1", "192.168.1.1", "169.254.169.254", "fd00::1", "100.64.1.1"]:
        assert not egress_allows_ip(network, private, 443), private


def test_approved_cidr_rules_allow_only_their_ports_and_protocol() -> None:
    network = spec(**APPROVED)
    assert egress_allows_ip(network, "198.51.100.20", 443)
    assert not egress_allows_ip(network, "198.51.100.20", 80)
    assert egress_allows_ip(network, "192.0.2.10", 8125, "UDP")
    assert not egress_allows_ip(network, "192.0.2.10", 8125, "TCP")
    assert not egress_allows_ip(network, "203.0.113.9", 443)


# --- an empty namespaceSelector admits every namespace: refused ----------------------------------------------------


def test_an_empty_namespace_selector_is_refused_by_a_cel_rule_naming_the_field_and_the_fix() -> None:
    crd = next(c for c in all_crds() if c["spec"]["names"]["kind"] == "WorkspaceNetwork")
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    endpoint = schema["properties"]["spec"]["properties"]["privateEndpoints"]["items"]
    [rule] = [r for r in endpoint["x-kubernetes-validations"] if r.get("fieldPath") == ".namespaceSelector"]
    assert "size(self.namespaceSelector.matchLabels) > 0" in rule["rule"]
    assert "size(self.namespaceSelector.matchExpressions) > 0" in rule["rule"]
    assert rule["message"].startswith("an empty namespaceSelector admits every namespace of the cluster")
    assert "kubernetes.io/metadata.name" in rule["message"]


def test_an_empty_namespace_selector_that_gets_through_admits_no_namespace() -> None:
    unvalidated = spec(
        publicNetworkAccess="Disabled",
        privateEndpoints=[
            {"name": "everyone", "namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "ui"}}},
            {"name": "office", "namespaceSelector": {}, "cidrs": ["192.0.2.0/24"]},
        ],
    )
    assert router_rules(unvalidated) == [{"from": [{"ipBlock": {"cidr": "192.0.2.0/24"}}], "ports": ROUTER_PORT}]


# --- FQDN rules: enforced by Cilium, or reported -----------------------------------------------------------------


def test_without_cilium_fqdn_rules_are_reported_not_rendered() -> None:
    network = spec(**APPROVED)
    rendered = render_network_policies(NS, network, SETTINGS, "net")
    assert [p["kind"] for p in rendered] == ["NetworkPolicy"] * 4
    assert "huggingface.co" not in json.dumps(rendered)
    assert [rule.name for rule in unenforced_outbound_rules(network, SETTINGS)] == ["hf", "cdn"]
    condition = fqdn_rules_condition(network, SETTINGS)
    assert (condition.type, condition.status, condition.reason) == (
        "FQDNRulesEnforced",
        "False",
        "FQDNPolicyUnsupported",
    )
    assert "hf (huggingface.co)" in condition.message
    assert "cdn (*.hf.co)" in condition.message


def test_a_cluster_serving_another_policy_api_does_not_count_as_cilium() -> None:
    other = NetworkSettings(fqdn_policy_api="crd.projectcalico.org/v1")
    assert [rule.name for rule in unenforced_outbound_rules(spec(**APPROVED), other)] == ["hf", "cdn"]
    assert EGRESS_FQDN not in render(spec(**APPROVED), other)


def test_with_cilium_fqdn_rules_become_a_cilium_network_policy() -> None:
    network = spec(**APPROVED)
    policy = render(network, CILIUM)[EGRESS_FQDN]
    assert (policy["apiVersion"], policy["kind"]) == ("cilium.io/v2", "CiliumNetworkPolicy")
    assert policy["metadata"]["namespace"] == NS
    assert policy["spec"]["endpointSelector"] == render(network)[EGRESS]["spec"]["podSelector"]
    dns, hf, cdn = policy["spec"]["egress"]
    # Cilium learns the addresses behind a name only from DNS answers that pass its proxy.
    assert dns["toEndpoints"] == [
        {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}
    ]
    assert dns["toPorts"] == [{"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*"}]}}]
    assert hf == {
        "toFQDNs": [{"matchName": "huggingface.co"}],
        "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}],
    }
    assert cdn == {"toFQDNs": [{"matchPattern": "*.hf.co"}], "toPorts": [{"ports": [{"port": "0", "protocol": "TCP"}]}]}
    assert unenforced_outbound_rules(network, CILIUM) == []
    condition = fqdn_rules_condition(network, CILIUM)
    assert (condition.status, condition.reason) == ("True", "EnforcedByCilium")


def test_cilium_alone_renders_nothing_extra_without_fqdn_rules() -> None:
    for network in [None, spec(), spec(outbound={"mode": "AllowInternetOutbound"})]:
        assert EGRESS_FQDN not in render(network, CILIUM)
        condition = fqdn_rules_condition(network, SETTINGS)
        assert (condition.status, condition.reason) == ("True", "NoFQDNRules")


# --- stable output for server-side apply --------------------------------------------------------------------------


@pytest.mark.parametrize("network", SETTINGS_UNDER_TEST)
def test_rendering_the_same_input_twice_gives_identical_bytes(network: WorkspaceNetworkSpec | None) -> None:
    name = None if network is None else "net"
    first = json.dumps(render_network_policies(NS, network, CILIUM, name))
    again = json.dumps(render_network_policies(NS, network, CILIUM, name))
    assert first == again


def test_rendered_objects_share_no_mutable_state() -> None:
    first = render_network_policies(NS, spec(**APPROVED), CILIUM, "net")
    first[0]["metadata"]["labels"]["x"] = "y"
    first[2]["spec"]["egress"][0]["ports"].clear()
    assert render_network_policies(NS, spec(**APPROVED), CILIUM, "net") != first


def test_every_network_policy_states_its_policy_types() -> None:
    # Without policyTypes an egress-only policy would also isolate ingress; cyclonus refuses such files too.
    for network in SETTINGS_UNDER_TEST:
        for policy in render_network_policies(NS, network, CILIUM, None if network is None else "net"):
            if policy["kind"] == "NetworkPolicy":
                assert policy["spec"]["policyTypes"] in (["Ingress"], ["Egress"])


def test_every_rendered_kind_is_one_the_workspace_declares_it_owns() -> None:
    owned = {(info.api_version, info.kind) for info in OWNS}
    for network in [*SETTINGS_UNDER_TEST, spec(**APPROVED)]:
        for settings in (SETTINGS, CILIUM):
            for policy in render_network_policies(NS, network, settings, None if network is None else "net"):
                assert (policy["apiVersion"], policy["kind"]) in owned


def test_what_still_exposes_a_private_workspace_is_named() -> None:
    from modelcatalog.render.network import exposing_objects, exposure_condition

    services = [
        {"metadata": {"name": "web"}, "spec": {"type": "LoadBalancer"}},
        {"metadata": {"name": "debug"}, "spec": {"type": "NodePort"}},
        {"metadata": {"name": "legacy"}, "spec": {"type": "ClusterIP", "externalIPs": ["198.51.100.7"]}},
        {"metadata": {"name": "internal"}, "spec": {"type": "ClusterIP"}},
    ]
    found = exposing_objects(services, [{"metadata": {"name": "site"}}])
    assert found == [
        "Ingress/site",
        "Service/debug (NodePort)",
        "Service/legacy (externalIPs)",
        "Service/web (LoadBalancer)",
    ]
    private = spec(publicNetworkAccess="Disabled", privateEndpoints=[{"name": "vnet", "cidrs": ["10.1.0.0/16"]}])
    condition = exposure_condition(private, found)
    assert (condition.type, condition.status, condition.reason) == ("PublicExposure", "True", "ExposingObjectsRemain")
    assert "Service/web (LoadBalancer)" in condition.message
    assert exposure_condition(spec(), found).status == "False", "a public workspace is meant to be reachable"

"""The workspace router's controller: the Service's exposure follows the network and the platform."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from modelcatalog.controllers.cluster import ClusterView
from modelcatalog.controllers.router import inputs
from modelcatalog.render.router import render
from modelcatalog.settings import Settings


class Networks:
    """The one read `inputs` makes of the cluster view."""

    def __init__(self, spec: dict[str, Any] | None) -> None:
        self.spec = spec

    def workspace_networks(self, namespace: str) -> list[dict[str, Any]]:
        return [] if self.spec is None else [{"metadata": {"name": "net"}, "spec": self.spec}]

    network_in_force = ClusterView.network_in_force  # the real rule, over the networks above


def service(network: dict[str, Any] | None, load_balancer: bool) -> dict[str, Any]:
    memo = kopf.Memo()
    memo.cluster = Networks(network)
    memo.settings = Settings(router_load_balancer=load_balancer)
    found: dict[str, Any] = next(o for o in render(inputs(memo, "team-a", "uid")) if o["kind"] == "Service")
    return found


PUBLIC = {"publicNetworkAccess": "Enabled", "allowedIpRanges": ["203.0.113.0/24"]}


@pytest.mark.parametrize(
    ("network", "allowed", "expected"),
    [
        (PUBLIC, True, "LoadBalancer"),
        (PUBLIC, False, "ClusterIP"),  # the platform does not allow load balancers
        (None, True, "LoadBalancer"),  # no WorkspaceNetwork: public access is Enabled by default
        ({"publicNetworkAccess": "Disabled", "privateEndpoints": [{"name": "vnet", "cidrs": ["10.0.0.0/8"]}]},
         True, "ClusterIP"),
    ],
)  # fmt: skip
def test_a_load_balancer_only_for_public_access_the_platform_allows(
    network: dict[str, Any] | None, allowed: bool, expected: str
) -> None:
    spec = service(network, allowed)["spec"]
    assert spec["type"] == expected
    if expected == "LoadBalancer" and network:
        assert spec["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
        assert spec["externalTrafficPolicy"] == "Local"
    else:
        assert "loadBalancerSourceRanges" not in spec

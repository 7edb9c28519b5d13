"""The operator in a pod: the API server's address from KUBERNETES_SERVICE_HOST/PORT, the token and CA
from MODELCATALOG_TOKEN_FILE / MODELCATALOG_CA_FILE when set (the test bed's pod runner, a projected
volume elsewhere), re-read at each login so a rotated token is picked up."""

from __future__ import annotations

from pathlib import Path

import kopf
import pytest

from modelcatalog.controllers.startup import service_account_login
from modelcatalog.kube.client import InCluster


def test_outside_a_pod_there_is_no_in_cluster_login(tmp_path: Path) -> None:
    assert InCluster.from_env({}) is None
    token = tmp_path / "token"
    assert InCluster.from_env({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "MODELCATALOG_TOKEN_FILE": str(token)}) is None


def test_the_token_and_ca_files_come_from_the_environment(tmp_path: Path) -> None:
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("first\n")
    ca.write_text("")
    env = {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": "6443",
        "MODELCATALOG_TOKEN_FILE": str(token),
        "MODELCATALOG_CA_FILE": str(ca),
        "MODELCATALOG_NAMESPACE": "mc",
    }
    in_cluster = InCluster.from_env(env)
    assert in_cluster == InCluster("https://127.0.0.1:6443", token, ca, "mc")
    info = service_account_login(in_cluster, kopf.OperatorSettings())
    assert (info.server, info.ca_path, info.token, info.default_namespace) == (
        "https://127.0.0.1:6443", str(ca), "first", "mc",
    )  # fmt: skip
    assert info.as_http_headers() == {"Authorization": "Bearer first"}
    token.write_text("rotated")
    assert service_account_login(in_cluster, kopf.OperatorSettings()).token == "rotated"


@pytest.mark.parametrize(
    ("host", "server"), [("fd00::1", "https://[fd00::1]:443"), ("10.96.0.1", "https://10.96.0.1:443")]
)
def test_the_address_is_the_service_hosts_ipv6_in_brackets(tmp_path: Path, host: str, server: str) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    found = InCluster.from_env({"KUBERNETES_SERVICE_HOST": host, "MODELCATALOG_TOKEN_FILE": str(token)})
    assert found is not None and found.server == server


def test_a_kubeconfig_token_is_sent(tmp_path: Path) -> None:
    """A ServiceAccount token in a kubeconfig (what `kubectl create token` gives), not only client certs."""
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: sa\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n"
        "users: [{name: sa, user: {token: abc}}]\ncontexts: [{name: sa, context: {cluster: c, user: sa}}]\n"
    )
    from modelcatalog.kube.client import KubeClient

    assert KubeClient.from_config(str(kubeconfig))._headers() == {"Authorization": "Bearer abc"}

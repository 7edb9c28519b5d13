"""The cluster-level policy of policy/ on the test bed: the same files as the chart's, with two differences.

- The webhook is registered by `url` (https://127.0.0.1:<port>/validate): the operator runs as a local process
  here, not behind the chart's Service.
- The workload policy's parameters trust the group system:masters too: the local operator uses the admin
  kubeconfig, not the chart's ServiceAccount.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from modelcatalog.localcluster.cluster import REPO_ROOT

POLICY = REPO_ROOT / "policy"
WEBHOOK = POLICY / "webhook.yaml"
PARAMS = POLICY / "params.yaml"
POLICIES = (POLICY / "private-workspace-exposure.yaml", POLICY / "operator-workloads.yaml")
TEST_BED_HOSTS = "127.0.0.1"  # MODELCATALOG_WEBHOOK_HOSTS: the address the API server calls


def webhook_configuration(port: int) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(WEBHOOK.read_text())
    for hook in config["webhooks"]:
        hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}/validate"}
    return config


def params(namespace: str = "modelcatalog-system") -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load(PARAMS.read_text())
    found["metadata"]["namespace"] = namespace
    found["data"]["trustedGroups"] = "system:masters"
    return found


def webhook_env(port: int) -> dict[str, str]:
    """The operator's settings for the test bed's webhook."""
    return {
        "MODELCATALOG_WEBHOOK_PORT": str(port),
        "MODELCATALOG_WEBHOOK_HOST": "127.0.0.1",
        "MODELCATALOG_WEBHOOK_HOSTS": TEST_BED_HOSTS,
    }


def install(kubectl: Callable[..., Any], port: int, namespace: str = "modelcatalog-system") -> None:
    """The operator's namespace, the webhook configuration (by url) and the admission policies."""
    namespace_manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    objects = [namespace_manifest, params(namespace), webhook_configuration(port)]
    kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(objects))
    for path in POLICIES:
        kubectl("apply", "--server-side", "-f", str(path))


def files() -> list[Path]:
    return [WEBHOOK, PARAMS, *POLICIES]

"""Operator-wide settings and the shared runtime (client, settings, work queues) kept in kopf's memo."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import kopf
from prometheus_client import start_http_server

from modelcatalog import GROUP
from modelcatalog.catalog.seed import seed as seed_catalog
from modelcatalog.controllers import usage, work
from modelcatalog.controllers.catalog import KIND as CATALOG_KIND
from modelcatalog.controllers.cluster import ClusterView
from modelcatalog.controllers.peering import Gate
from modelcatalog.kube import clusternetwork
from modelcatalog.kube.client import InCluster, KubeClient
from modelcatalog.kube.resources import ResourceInfo
from modelcatalog.render.deployment import KIND as DEPLOYMENT_KIND
from modelcatalog.render.network import KIND as NETWORK_KIND
from modelcatalog.render.network import NetworkSettings
from modelcatalog.render.owners import child_resources
from modelcatalog.settings import Settings
from modelcatalog.settings import load as load_settings
from modelcatalog.shard import Shard
from modelcatalog.webhook import server as webhook

RESYNC_SECONDS = 300
METRICS_PORT = int(os.environ.get("MODELCATALOG_METRICS_PORT", "0"))  # 0: no metrics server
METRICS_ADDRESS = os.environ.get("MODELCATALOG_METRICS_ADDRESS", "0.0.0.0")  # noqa: S104 (a pod's own network)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.posting.level = logging.WARNING  # kopf's own events only for problems; ours are explicit
    # No kopf worker limit: kopf holds each object's worker until every index is filled, so a limit
    # below the object count deadlocks startup. Reconciles are bounded by our own work queues.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    if os.environ.get("MODELCATALOG_STANDALONE") == "1":  # `kopf run --standalone` sets it too
        settings.peering.standalone = True
    settings.peering.mandatory = not settings.peering.standalone
    settings.peering.lifetime = 30  # a crashed peer stops counting after this
    memo.client = KubeClient.from_config(os.environ.get("MODELCATALOG_KUBECONFIG"))
    memo.settings = await load_settings(memo.client)  # the modelcatalog-settings ConfigMap under the env
    # One peering per shard: each shard has its own active replica and standbys (docs/sharding.md).
    settings.peering.name = os.environ.get("MODELCATALOG_PEERING") or memo.settings.shard.peering()
    await seed_catalog(memo.client, memo.settings.namespace)  # the chart's default catalog, if it ships one
    peering = settings.peering.name
    # The peering object must exist before replicas can see each other; create it if missing.
    if not settings.peering.standalone and await memo.client.get("kopf.dev/v1", "ClusterKopfPeering", peering) is None:
        await memo.client.apply(
            {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": peering}}
        )
    memo.network = await network_settings(memo.client, memo.settings)
    memo.queues = {}
    memo.access_modes = {}  # namespace -> public access its endpoints were last told
    children = await served(memo.client, child_resources())
    memo.cluster = ClusterView(
        memo.client, memo, children, None if settings.peering.standalone else peering,
        shard=memo.settings.shard, shared_namespace=memo.settings.serverless_namespace,
    )  # fmt: skip
    memo.gate = Gate(None if settings.peering.standalone else settings.peering.priority, lambda: requeue_all(memo))
    memo.cluster.start()
    loop = asyncio.get_running_loop()
    memo.background = [loop.create_task(resync_forever(memo)), loop.create_task(memo.gate.follow(memo.cluster.peering))]
    memo.usage = {}  # (namespace, name) -> status.usage of ServerlessEndpoints, from the serverless store
    memo.background.append(loop.create_task(usage.poll_forever(memo)))
    if METRICS_PORT:
        start_http_server(METRICS_PORT, addr=METRICS_ADDRESS)
    memo.webhook = await webhook.start(memo) if memo.settings.webhook_port else None
    logger.info("modelcatalog operator started (serverless namespace %s; %s)", memo.settings.serverless_namespace,
                describe_shard(memo.settings.shard))  # fmt: skip


def describe_shard(shard: Shard) -> str:
    if not shard.sharded:
        return "not sharded"
    role = "owns" if shard.owns_shared else "reads"
    return f"shard {shard.name}: namespaces {shard.selector()}, {role} the shared objects"


@kopf.on.login()
def login(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> kopf.ConnectionInfo | None:
    """In a pod, the ServiceAccount; otherwise the kubeconfig named now (not when a library was imported)."""
    in_cluster = None if os.environ.get("MODELCATALOG_KUBECONFIG") else InCluster.from_env()
    if in_cluster is not None:
        return service_account_login(in_cluster, settings)
    return kopf.login_with_kubeconfig(settings=settings, logger=logger)


def service_account_login(in_cluster: InCluster, settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
    """kopf's own service-account login reads fixed paths and names kubernetes.default.svc (cluster DNS);
    this one takes the address from KUBERNETES_SERVICE_HOST/PORT and the files from InCluster. kopf calls
    it again on a 401, which picks up a rotated token."""
    return kopf.ConnectionInfo(
        server=in_cluster.server,
        ca_path=str(in_cluster.ca_file) if in_cluster.ca_file.exists() else None,
        token=in_cluster.token() or None,
        scheme="Bearer",
        default_namespace=in_cluster.namespace,
        trust_env=settings.networking.trust_env,
    )


async def resync_forever(memo: kopf.Memo) -> None:
    """Re-check every object now and then (a missed event, a date passing), through the work queues."""
    await memo.cluster.ready()
    while True:
        await asyncio.sleep(RESYNC_SECONDS)
        requeue_all(memo)


def requeue_all(memo: kopf.Memo) -> None:
    for body in memo.cluster.deployments.all():
        work.request(memo, DEPLOYMENT_KIND, (body["metadata"].get("namespace"), body["metadata"]["name"]))
    for namespace in {n["metadata"].get("namespace") for n in memo.cluster.networks.all()}:
        work.request(memo, NETWORK_KIND, namespace)
    for model in memo.cluster.models.all():
        work.request(memo, CATALOG_KIND, model["metadata"]["name"])


async def served(client: KubeClient, resources: tuple[ResourceInfo, ...]) -> list[ResourceInfo]:
    """The resources the API server serves (an optional CRD such as Cilium's may be absent)."""
    served_by: dict[str, set[str]] = {}  # one discovery request per API group version
    found = []
    for info in resources:
        if info.api_version not in served_by:
            path = "/api/v1" if info.api_version == "v1" else f"/apis/{info.api_version}"
            listing = await client.get_path(path)
            served_by[info.api_version] = {r.get("name") for r in (listing or {}).get("resources", [])}
        if info.plural in served_by[info.api_version]:
            found.append(info)
    return found


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    for task in memo.background:
        task.cancel()
    if memo.get("webhook") is not None:
        await memo.webhook.cleanup()
    await memo.cluster.stop()
    for queue in memo.queues.values():
        await queue.close()
    await memo.client.close()


async def network_settings(client: KubeClient, settings: Settings) -> NetworkSettings:
    """What the policies need to know about this cluster (kube/clusternetwork.py) plus the platform's settings."""
    return clusternetwork.network_settings(settings, await clusternetwork.read_cluster_network(client))

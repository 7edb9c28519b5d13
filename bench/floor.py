"""The floor under a burst: the same API requests as the operator's, with none of the operator's work.

`python -m bench floor [--burst-count N]`: on a fresh local control plane with the operator stopped, a client
creates each ModelDeployment as the burst does and at once makes the requests a reconcile of it makes: the four
children the operator renders for it (server-side applies, in parallel), its status, its Event; eight objects
at a time, as the operator's queue runs them. Run once without and once with the lookup that precedes creating
each child. What it takes is what the control plane (API server, etcd, controller-manager) needs for these
objects on this machine, whatever the operator's code does: the lowest time a burst could reach here.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date
from typing import Any

from modelcatalog import API_VERSION
from modelcatalog.api.deployment import EndpointStatus, ModelDeploymentSpec
from modelcatalog.catalog import files
from modelcatalog.kube.client import KubeClient, event_manifest
from modelcatalog.kube.resources import resource
from modelcatalog.kube.sync import stamped
from modelcatalog.render import deployment as render
from modelcatalog.render.deployment_status import Observed, Placement, deployment_status, resolve
from modelcatalog.render.keys import Keys
from modelcatalog.render.objects import Owner
from modelcatalog.settings import Settings

IN_FLIGHT = 8  # the operator's reconciles in flight per kind (controllers/queue.py)
CREATING = 16  # the burst's clients creating objects at once (bench/__main__.py create_all)
INFO = resource(API_VERSION, render.KIND)


class Requests:
    """What one reconcile of a new ModelDeployment asks of the API server, rendered by the operator's own code."""

    def __init__(self) -> None:
        manifests = files.load_manifests()
        self.models = {entry.name: entry.spec for entry in files.models(manifests)}
        self.types = dict(files.instance_types(manifests))
        self.settings = Settings()

    def children(self, created: dict[str, Any]) -> list[dict[str, Any]]:
        meta, spec = created["metadata"], ModelDeploymentSpec.model_validate(created["spec"])
        placement = resolve(spec.model, self.models.get(spec.model), spec.instance_type, self.types, False,
                            date.today(), retired_ok=True)  # fmt: skip
        assert isinstance(placement, Placement)
        inputs = render.DeploymentInputs(
            namespace=meta["namespace"], owner=Owner(render.KIND, meta["name"], meta["uid"]), spec=spec,
            model_name=spec.model, model=placement.model, instance_type=placement.instance_type,
            settings=self.settings, keys=Keys.generate(),
        )  # fmt: skip
        return [stamped(m) for m in render.render(inputs)]

    @staticmethod
    def status(created: dict[str, Any]) -> dict[str, Any]:
        name = created["metadata"]["name"]
        endpoint = EndpointStatus(name=name, url="http://router", service=name, network_access="Enabled")
        status = deployment_status(None, None, Observed(desired_replicas=0), endpoint, render.selector_string(name))
        return status.model_copy(update={"observed_generation": created["metadata"]["generation"]}).to_wire()


async def run(kubeconfig: str, manifests: list[dict[str, Any]], lookups: bool) -> float:
    """Seconds until every object's requests were answered."""
    client = KubeClient.from_config(kubeconfig)
    requests = Requests()
    creating, slots = asyncio.Semaphore(CREATING), asyncio.Semaphore(IN_FLIGHT)

    async def child(manifest: dict[str, Any]) -> None:
        if lookups:
            meta = manifest["metadata"]
            await client.get(manifest["apiVersion"], manifest["kind"], meta["name"], meta["namespace"])
        await client.apply(manifest)

    async def one(manifest: dict[str, Any]) -> None:
        async with creating:
            created = await client.apply(manifest)  # the user's create
        async with slots:
            await asyncio.gather(*(child(m) for m in requests.children(created)))
            meta, status = created["metadata"], requests.status(created)
            await client.patch_status(INFO, meta["name"], meta["namespace"], status)
            await client.create(
                event_manifest(created, render.KIND, status["phase"], f"phase {status['phase']}", False)
            )

    started = time.monotonic()
    try:
        await asyncio.gather(*(one(m) for m in manifests))
    finally:
        await client.close()
    return time.monotonic() - started

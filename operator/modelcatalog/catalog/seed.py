"""The default catalog, installed by the operator from the ConfigMap the Helm chart ships.

Helm cannot create a CatalogModel in the release that creates its CRD (it maps every object of a release
to a served kind before creating any), so with `catalog.install=true` the chart ships the manifests of
catalog/ in the ConfigMap `modelcatalog-default-catalog` and the operator applies them at start:
server-side, under their own field manager, without force. A field the platform team changed with
another manager is a conflict: that object is left as they made it (logged), never taken back. An
unchanged catalog writes nothing (server-side apply of the same fields is a no-op), so a restart, a
second replica or `helm upgrade` without catalog changes leaves every resourceVersion as it was.
"""

from __future__ import annotations

import logging
from typing import Any

import yaml

from modelcatalog.kube.client import ApiError, KubeClient

SEED_CONFIGMAP = "modelcatalog-default-catalog"
SEED_MANAGER = "modelcatalog-default-catalog"

logger = logging.getLogger(__name__)


def manifests(data: dict[str, str]) -> list[dict[str, Any]]:
    """The documents of every key, keys in order (instance types before the models that name them)."""
    return [doc for key in sorted(data) for doc in yaml.safe_load_all(data[key]) if doc]


async def seed(client: KubeClient, namespace: str) -> tuple[int, list[str]]:
    """Apply the ConfigMap's manifests, if it exists; returns (applied, names left alone on conflict)."""
    try:
        found = await client.get("v1", "ConfigMap", SEED_CONFIGMAP, namespace)
    except ApiError as error:
        logger.warning("cannot read ConfigMap %s/%s (%s): no default catalog", namespace, SEED_CONFIGMAP, error)
        return 0, []
    if found is None:
        return 0, []
    applied, conflicts = 0, []
    for manifest in manifests(found.get("data") or {}):
        name = f"{manifest['kind']} {manifest['metadata']['name']}"
        try:
            await client.apply(manifest, field_manager=SEED_MANAGER, force=False)
            applied += 1
        except ApiError as error:
            if error.status != 409:
                raise
            conflicts.append(name)
            logger.warning("default catalog: %s was changed by another manager; left as it is (%s)", name, error)
    logger.info("default catalog: %d objects applied, %d left as changed by others", applied, len(conflicts))
    return applied, conflicts

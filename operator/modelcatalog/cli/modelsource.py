"""Where `modelcatalog models` reads the catalog from: the cluster's objects or the catalog/ manifests."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from modelcatalog import API_VERSION, GROUP, VERSION, clock
from modelcatalog.api.catalog import InstanceTypeSpec
from modelcatalog.api.kinds import CATALOG_MODEL, INSTANCE_TYPE
from modelcatalog.catalog import files
from modelcatalog.catalog.files import CatalogError, Entry
from modelcatalog.cli.errors import CliError, ExitCode
from modelcatalog.labels import MANAGER
from modelcatalog.settings import CONFIGMAP, CONFIGMAP_KEYS, DEFAULT_NAMESPACE

# (connect, read) seconds: `--source auto` must fall back to the files quickly when no cluster answers.
REQUEST_TIMEOUT = (3, 30)


class Source(StrEnum):
    AUTO = "auto"
    CLUSTER = "cluster"
    FILES = "files"


@dataclass(frozen=True)
class Catalog:
    models: list[Entry]
    instance_types: dict[str, InstanceTypeSpec]
    origin: str
    region: str | None = None  # the cluster's region (its settings ConfigMap), the default of --region


def env_region() -> str | None:
    """Without a cluster, the region is MODELCATALOG_REGION when set, else none (every region is listed)."""
    return os.environ.get(CONFIGMAP_KEYS["region"]) or None


class ClusterUnavailable(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.UNAVAILABLE)


def load_catalog(source: Source | str, catalog_dir: Path | None, kubeconfig: str | None) -> Catalog:
    """`auto` reads the cluster when one answers, else the files; an explicit --catalog-dir means the files."""
    if source == Source.FILES or (source == Source.AUTO and catalog_dir is not None):
        return from_files(catalog_dir or files.CATALOG_DIR)
    if source == Source.CLUSTER:
        return from_cluster(kubeconfig)
    try:
        return from_cluster(kubeconfig)
    except ClusterUnavailable as error:
        if kubeconfig_path(kubeconfig) is not None:
            print(f"note: {error}; reading {files.CATALOG_DIR} instead", file=sys.stderr)
        return from_files(files.CATALOG_DIR)


def from_files(directory: Path) -> Catalog:
    if not directory.is_dir():
        raise CliError(f"catalog directory {directory} does not exist", ExitCode.NOT_FOUND)
    try:
        manifests = files.load_manifests(directory)
    except CatalogError as error:
        raise CliError(str(error), ExitCode.INVALID) from error
    return Catalog(
        files.models(manifests), files.instance_types(manifests), f"files in {directory}", region=env_region()
    )


def from_cluster(kubeconfig: str | None) -> Catalog:
    api = client.CustomObjectsApi(api_client(kubeconfig))
    manifests = [
        *list_objects(api, CATALOG_MODEL.plural, CATALOG_MODEL.kind),
        *list_objects(api, INSTANCE_TYPE.plural, INSTANCE_TYPE.kind),
    ]
    settings = cluster_settings(api.api_client)
    try:
        return Catalog(
            files.models(manifests),
            files.instance_types(manifests),
            f"cluster {api.api_client.configuration.host}",
            region=settings.get("region") or None,
        )
    except CatalogError as error:
        raise CliError(f"in the cluster: {error}", ExitCode.INVALID) from error


def cluster_settings(api: Any) -> dict[str, str]:
    """The cluster's `modelcatalog-settings` ConfigMap data ({} when absent or unreadable); the CLI's clock
    follows its clockOffsetDays (MODELCATALOG_CLOCK_OFFSET_DAYS still wins), as the operator's does."""
    namespace = os.environ.get("MODELCATALOG_NAMESPACE", DEFAULT_NAMESPACE)
    try:
        found = client.CoreV1Api(api).read_namespaced_config_map(CONFIGMAP, namespace, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as error:
        if error.status not in (403, 404):
            print(
                f"note: cannot read ConfigMap {namespace}/{CONFIGMAP}: {error.status} {error.reason}", file=sys.stderr
            )
        return {}
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise ClusterUnavailable(f"cannot reach the cluster at {api.configuration.host}: {error}") from error
    data: dict[str, str] = dict(found.data or {})
    try:
        clock.configure(clock.parse_offset(data.get("clockOffsetDays"), f"{CONFIGMAP} clockOffsetDays"))
    except ValueError as error:
        raise CliError(f"the cluster's {error}", ExitCode.INVALID) from error
    return data


def kubeconfig_path(explicit: str | None) -> str | None:
    """The kubeconfig the client would read (KUBECONFIG may list several files), or None when there is none."""
    if explicit:
        return explicit
    candidates = os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
    existing = [p for p in candidates.split(os.pathsep) if p and Path(p).expanduser().is_file()]
    return os.pathsep.join(existing) or None


def api_client(kubeconfig: str | None) -> Any:
    path = kubeconfig_path(kubeconfig)
    if path is None:
        raise ClusterUnavailable("no kubeconfig: pass --kubeconfig or set KUBECONFIG")
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=path, client_configuration=configuration, persist_config=False)
    except (config.ConfigException, OSError, TypeError, ValueError) as error:
        raise ClusterUnavailable(f"kubeconfig {path} does not work: {error}") from error
    configuration.retries = 1
    return client.ApiClient(configuration)


def list_objects(api: Any, plural: str, kind: str) -> list[dict[str, Any]]:
    host = api.api_client.configuration.host
    try:
        listing = api.list_cluster_custom_object(GROUP, VERSION, plural, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as error:
        if error.status == 404:
            raise ClusterUnavailable(f"the cluster at {host} has no {kind} CRD ({plural}.{GROUP})") from error
        raise ClusterUnavailable(f"listing {plural} at {host} failed: {error.status} {error.reason}") from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise ClusterUnavailable(f"cannot reach the cluster at {host}: {error}") from error
    # Items of a list response may omit kind and apiVersion; the parsers key on kind.
    return [item | {"apiVersion": API_VERSION, "kind": kind} for item in listing.get("items", [])]


def apply_catalog_model(manifest: dict[str, Any], kubeconfig: str | None) -> None:
    """Server-side apply, so repeated imports update the object and other managers' fields are kept."""
    api = client.CustomObjectsApi(api_client(kubeconfig))
    host = api.api_client.configuration.host
    name = manifest["metadata"]["name"]
    try:
        api.patch_cluster_custom_object(
            GROUP,
            VERSION,
            CATALOG_MODEL.plural,
            name,
            manifest,
            field_manager=MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
            _request_timeout=REQUEST_TIMEOUT,
        )
    except ApiException as error:
        if error.status == 422:
            raise CliError(f"the cluster rejected CatalogModel {name}: {error.body}", ExitCode.INVALID) from error
        if error.status == 404:
            raise ClusterUnavailable(f"the cluster at {host} has no CatalogModel CRD") from error
        raise CliError(f"applying CatalogModel {name} failed: {error.status} {error.reason}") from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise ClusterUnavailable(f"cannot reach the cluster at {host}: {error}") from error

"""The webhook's HTTPS server in the operator process: serving certificate, caBundle, and /validate.

Every replica serves (a read of the watch caches writes nothing), leader or standby. At start the operator
reads its certificate from one Secret in its namespace (created when missing or no longer usable) and writes
the CA into the `caBundle` of each webhook of the ValidatingWebhookConfiguration named in its settings, with a
field manager of its own, so the chart (which renders the configuration without caBundle) and the operator
never take each other's fields.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import tempfile
from pathlib import Path
from typing import Any

import kopf
from aiohttp import web

from modelcatalog import clock
from modelcatalog.controllers.cluster import ClusterView
from modelcatalog.kube.client import ApiError, KubeClient
from modelcatalog.settings import Settings
from modelcatalog.webhook import certs
from modelcatalog.webhook.review import Catalog, Verdict, response, review_deployment, review_serverless

log = logging.getLogger(__name__)
CA_FIELD_MANAGER = "modelcatalog-webhook-ca"
WEBHOOK_CONFIG = ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")
CACHE_WAIT_SECONDS = 5.0
CA_RETRY_SECONDS = 30.0


def hosts(settings: Settings) -> list[str]:
    service, namespace = settings.webhook_service, settings.namespace
    names = [f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local", f"{service}.{namespace}"]
    return [*names, *settings.webhook_hosts]


async def serving_cert(client: KubeClient, settings: Settings) -> certs.ServingCert:
    """The Secret's certificate when it still serves; a new one (written back) otherwise."""
    wanted = hosts(settings)
    found = await client.get("v1", "Secret", settings.webhook_secret, settings.namespace)
    stored = certs.ServingCert.from_secret_data((found or {}).get("data") or {})
    if stored is not None and certs.usable(stored, wanted):
        return stored
    fresh = certs.generate(wanted)
    manifest: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": settings.webhook_secret, "namespace": settings.namespace,
                     "labels": {"app.kubernetes.io/part-of": "modelcatalog",
                                "app.kubernetes.io/component": "webhook"}},
        "data": fresh.secret_data(),
    }  # fmt: skip
    if found is None:
        try:
            await client.create(manifest)
        except ApiError as error:
            if error.status != 409:
                raise
            return await serving_cert(client, settings)  # another replica made one first: use it
    else:
        manifest["metadata"]["resourceVersion"] = found["metadata"]["resourceVersion"]
        await client.apply(manifest)
    log.info("webhook certificate written to Secret %s/%s", settings.namespace, settings.webhook_secret)
    return fresh


async def publish_ca(client: KubeClient, settings: Settings, ca: bytes) -> bool:
    """caBundle of every webhook of the configuration; False when the configuration does not exist (yet)."""
    name = settings.webhook_configuration
    found = await client.get(*WEBHOOK_CONFIG, name)
    if found is None:
        return False
    bundle = base64.b64encode(ca).decode()
    webhooks = [w["name"] for w in found.get("webhooks") or []]
    if all((w.get("clientConfig") or {}).get("caBundle") == bundle for w in found.get("webhooks") or []):
        return True
    patch = {
        "apiVersion": WEBHOOK_CONFIG[0], "kind": WEBHOOK_CONFIG[1], "metadata": {"name": name},
        "webhooks": [{"name": w, "clientConfig": {"caBundle": bundle}} for w in webhooks],
    }  # fmt: skip
    await client.apply(patch, field_manager=CA_FIELD_MANAGER)
    log.info("caBundle written to ValidatingWebhookConfiguration %s (%d webhooks)", name, len(webhooks))
    return True


async def keep_ca_published(client: KubeClient, settings: Settings, ca: bytes) -> None:
    """The configuration may come after the operator (or be re-rendered by the chart without caBundle)."""
    while True:
        try:
            await publish_ca(client, settings, ca)
        except ApiError as error:
            log.warning("cannot write the caBundle of %s: %s", settings.webhook_configuration, error)
        await asyncio.sleep(CA_RETRY_SECONDS)


def ssl_context(cert: certs.ServingCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory() as tmp:  # load_cert_chain reads files only
        crt, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        crt.write_bytes(cert.cert)
        key.touch(mode=0o600)
        key.write_bytes(cert.key)
        context.load_cert_chain(crt, key)
    return context


class Webhook:
    def __init__(self, cluster: ClusterView, settings: Settings) -> None:
        self.cluster = cluster
        self.settings = settings

    def catalog(self) -> Catalog:
        return Catalog(self.cluster.catalog_model, self.cluster.instance_types_by_name(), clock.today(),
                       self.settings.require_pinned_revision, self.settings)  # fmt: skip

    def verdict(self, request: dict[str, Any]) -> Verdict:
        operation = request.get("operation", "")
        obj = request.get("object") or {}
        old = request.get("oldObject")
        kind = (request.get("kind") or {}).get("kind")
        if kind == "ModelDeployment":
            spec = obj.get("spec") or {}
            namespace = request.get("namespace") or obj["metadata"].get("namespace")
            endpoint = spec.get("endpointName") or obj["metadata"].get("name")
            others = {
                b["metadata"]["name"]: int((b.get("spec") or {}).get("trafficPercent", 100))
                for b in self.cluster.deployments_by("endpoint", namespace, endpoint)
            }
            workspace = self.cluster.gpu_workspace(namespace, obj["metadata"].get("name", ""))
            return review_deployment(operation, obj, old, self.catalog(), others, workspace)
        if kind == "ServerlessEndpoint":
            return review_serverless(operation, obj, old, self.catalog())
        return Verdict(True)

    async def validate(self, http: web.Request) -> web.Response:
        try:
            review = await http.json()
            request = review["request"]
            uid = request["uid"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "expected an AdmissionReview"}, status=400)
        try:
            await asyncio.wait_for(self.cluster.ready(), CACHE_WAIT_SECONDS)
        except TimeoutError:
            warning = "the modelcatalog operator is starting: this object was not checked; its status will say"
            return web.json_response(response(uid, Verdict(True, warnings=(warning,))))
        try:
            verdict = self.verdict(request)
        except Exception:  # never crash on input: admit, the reconcile reports
            log.exception("webhook review failed; admitting")
            verdict = Verdict(True, warnings=("the modelcatalog webhook could not check this object",))
        return web.json_response(response(uid, verdict))

    async def healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")


async def start(memo: kopf.Memo) -> web.AppRunner:
    """Certificate, caBundle, and the server on settings.webhook_port; the caller keeps the runner to stop it."""
    settings: Settings = memo.settings
    cert = await serving_cert(memo.client, settings)
    hook = Webhook(memo.cluster, settings)
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/validate", hook.validate)
    app.router.add_get("/healthz", hook.healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.webhook_host, settings.webhook_port, ssl_context=ssl_context(cert))
    await site.start()
    memo.background.append(asyncio.get_running_loop().create_task(keep_ca_published(memo.client, settings, cert.ca)))
    log.info("admission webhook listening on https://%s:%d/validate", settings.webhook_host, settings.webhook_port)
    return runner

"""The pod runner: real processes for the pods kwok only pretends to run (see docs/development.md).

With the kwok pod range on loopback (127.N.0.0/16, per cluster), a process bound to a pod's IP and container
port *is* that pod. For each Running pod whose container image is known (image repository, any
tag) the runner starts the matching local process with the container's env and args (the project's
own image: the container's command if it has one, e.g. the chart's operator, else the router), a
ServiceAccount token from a TokenRequest in a file (MODELCATALOG_TOKEN_FILE) and the API server's
real address (KUBERNETES_SERVICE_HOST/PORT, MODELCATALOG_CA_FILE); it restarts it per the pod's
restartPolicy, stops it when the pod goes, and sets the pod's Ready condition from the container's
readiness probe. It also forwards each loopback Service ClusterIP:port to a ready pod, as kube-proxy
would.

kwok's pod-ready stage writes status once (its selector matches only pods without a podIP or
without a started container), so the runner's later patches of Ready are not overwritten. Between
kwok's Ready=True and the runner's first probe the pod looks ready while nothing listens yet: the
router retries a refused connection on another pod, and the runner sets Ready=False at once.

`python -m modelcatalog.localcluster.podrunner --kubeconfig .work/modelcatalog.kubeconfig`
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ipaddress
import logging
import os
import random
import re
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from modelcatalog.api.base import now
from modelcatalog.kube.client import ApiError, KubeClient
from modelcatalog.settings import Settings

log = logging.getLogger(__name__)

PROBE_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 2.0
RESTART_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
TOKEN_SECONDS = 3600
STOP_GRACE_SECONDS = 5.0
WATCH_SECONDS = 300
TESTSERVER: tuple[str, ...] = ("modelcatalog.localcluster.testserver",)
ROUTER: tuple[str, ...] = ("modelcatalog.router",)


def repository(image: str) -> str:
    """The image without its tag or digest."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def known_images(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Image repository -> the module run in its place (for the project's own image, `settings.router_image`,
    only when the container has no command: the image's default CMD is the router)."""
    images = {repository(image): TESTSERVER for image in settings.images.values()}
    images[repository(settings.router_image)] = ROUTER
    return images


REFERENCE = re.compile(r"\$\$|\$\(([^)]*)\)")
PYTHON = re.compile(r"python(3(\.\d+)?)?")


def expand(value: str, defined: dict[str, str]) -> str:
    """The kubelet's `$(VAR)` expansion of command, args and env values: a defined variable is replaced,
    an undefined reference is left as written, `$$` is a literal `$`."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return defined.get(name, match.group(0))

    return REFERENCE.sub(replace, value)


def local_command(command: list[str]) -> tuple[str, ...]:
    """The container's command as a local process: the image's `python` is this interpreter (its
    environment has the project installed, as the image's venv does)."""
    if command and PYTHON.fullmatch(command[0].rsplit("/", 1)[-1]):
        return (sys.executable, *command[1:])
    return tuple(command)


@dataclass(frozen=True)
class ApiServer:
    host: str
    port: str
    ca_file: str


@dataclass(frozen=True)
class Launch:
    """What to run for one pod, and how to tell it is ready."""

    key: str
    namespace: str
    name: str
    uid: str
    ip: str
    port: int
    argv: tuple[str, ...]
    env: dict[str, str] = field(repr=False)
    probe_path: str | None
    probe_port: int
    restart_policy: str
    service_account: str | None
    probe_scheme: str = "HTTP"
    probe_failures: int = 3  # the readiness probe's failureThreshold (the kubelet's default)
    secret_mounts: tuple[SecretMount, ...] = ()
    secret_env: tuple[tuple[str, str, str], ...] = ()  # (variable, Secret, key) of env valueFrom.secretKeyRef
    pre_stop_seconds: int = 0  # the container's preStop sleep: it keeps serving that long once deleted


@dataclass(frozen=True)
class SecretMount:
    """A Secret volume the container mounts: the runner writes its keys as files under its workdir
    and points env values and args under `path` there, as the kubelet's mount would."""

    volume: str
    secret: str
    path: str


def secret_mounts(container: dict[str, Any], pod_spec: dict[str, Any]) -> tuple[SecretMount, ...]:
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod_spec.get("volumes") or [] if (v.get("secret") or {})}
    return tuple(
        SecretMount(m["name"], secrets[m["name"]], m["mountPath"].rstrip("/"))
        for m in container.get("volumeMounts") or []
        if m.get("name") in secrets
    )


def secret_env(container: dict[str, Any]) -> tuple[tuple[str, str, str], ...]:
    refs = [
        (item["name"], (item.get("valueFrom") or {}).get("secretKeyRef") or {}) for item in container.get("env") or []
    ]
    return tuple((name, ref["name"], ref["key"]) for name, ref in refs if ref.get("name") and ref.get("key"))


def remap(value: str, mounts: dict[str, Path]) -> str:
    """A path under a mount, moved to where the runner wrote the volume's files."""
    for path, local in mounts.items():
        if value == path or value.startswith(path + "/"):
            return str(local) + value[len(path) :]
    return value


def container_env(container: dict[str, Any], pod: dict[str, Any], base: dict[str, str] | None = None) -> dict[str, str]:
    """Literal values (with `$(VAR)` of the variables defined before them, `base` first, as the kubelet
    expands them) and the downward-API fields a local process can be given."""
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    fields = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta.get("uid", ""),
        "status.podIP": status.get("podIP", ""),
        "status.hostIP": status.get("hostIP", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
    }
    defined = dict(base or {})
    env = {}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), defined)
        elif path := ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath"):
            env[item["name"]] = fields.get(path, "")
        else:
            continue
        defined[item["name"]] = env[item["name"]]
    return env


def resolve_port(container: dict[str, Any], port: int | str | None) -> int | None:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for declared in container.get("ports") or []:
        if port is None or declared.get("name") == port:
            return int(declared["containerPort"])
    return None


def launch_for(pod: dict[str, Any], images: dict[str, tuple[str, ...]], api: ApiServer) -> Launch | None:
    """The process a Running pod of a known image becomes; None for any other pod."""
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    ip = status.get("podIP")
    if status.get("phase") != "Running" or not ip or meta.get("deletionTimestamp") or not is_loopback(ip):
        return None
    container = next((c for c in spec.get("containers") or [] if repository(c.get("image", "")) in images), None)
    if container is None:
        return None
    module = images[repository(container["image"])]
    port = resolve_port(container, None) or 8080
    probe = (container.get("readinessProbe") or {}).get("httpGet") or {}
    cluster = {
        "KUBERNETES_SERVICE_HOST": api.host,
        "KUBERNETES_SERVICE_PORT": api.port,
        "MODELCATALOG_CA_FILE": api.ca_file,
    }
    env = container_env(container, pod, cluster) | cluster
    args = [expand(str(a), env) for a in container.get("args") or []]
    command = [expand(str(c), env) for c in container.get("command") or []]
    # The project's image with a command of its own (the chart's operator) runs it; without, its CMD (the router).
    own = module == ROUTER and bool(command)
    argv = (*local_command(command), *args) if own else (sys.executable, "-m", *module, *args)
    if module == TESTSERVER:
        argv += ("--host", ip, "--port", str(port))
    elif not command:
        env |= {
            "MODELCATALOG_ROUTER_NAMESPACE": meta["namespace"],
            "MODELCATALOG_ROUTER_HOST": ip,
            "MODELCATALOG_ROUTER_PORT": str(port),
        }
    automount = spec.get("automountServiceAccountToken", True)
    return Launch(
        key=f"{meta['namespace']}/{meta['name']}",
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta.get("uid", ""),
        ip=ip,
        port=port,
        argv=argv,
        env=env,
        probe_path=probe.get("path"),
        probe_port=resolve_port(container, probe.get("port")) or port,
        restart_policy=spec.get("restartPolicy", "Always"),
        service_account=spec.get("serviceAccountName", "default") if automount else None,
        probe_scheme=str(probe.get("scheme", "HTTP")).upper(),
        probe_failures=int((container.get("readinessProbe") or {}).get("failureThreshold") or 3),
        secret_mounts=secret_mounts(container, spec),
        secret_env=secret_env(container),
        pre_stop_seconds=pre_stop_seconds(container),
    )


def pre_stop_seconds(container: dict[str, Any]) -> int:
    pre_stop = (container.get("lifecycle") or {}).get("preStop") or {}
    return int((pre_stop.get("sleep") or {}).get("seconds") or 0)


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def should_restart(policy: str, returncode: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and returncode != 0)


def is_ready(was_ready: bool | None, failures: int, threshold: int) -> bool:
    """As the kubelet: not ready until a probe passes, then ready until `threshold` probes in a row fail."""
    return failures == 0 or (was_ready is True and failures < threshold)


def ready_patch(ready: bool) -> dict[str, Any]:
    value = "True" if ready else "False"
    stamp = now()
    conditions = [{"type": t, "status": value, "lastTransitionTime": stamp} for t in ("Ready", "ContainersReady")]
    return {"status": {"conditions": conditions}}


class PodProcess:
    """One pod's process: started, probed, restarted per restartPolicy, stopped when the pod goes."""

    def __init__(
        self, launch: Launch, client: KubeClient, workdir: Path, after: tuple[asyncio.Task[None], ...] = ()
    ) -> None:
        """`after`: processes of deleted pods still stopping on the same IP (kwok hands a deleted pod's IP out
        again at once, while the kubelet would still be stopping its containers): started once they are gone."""
        self.launch = launch
        self.client = client
        self.workdir = workdir
        self.after = after
        self.task = asyncio.create_task(self._supervise())
        self._ready: bool | None = None

    async def _supervise(self) -> None:
        launch = self.launch
        if self.after:
            await asyncio.wait(self.after)
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "HOME", "LANG")} | launch.env
        failures = 0
        while True:
            if launch.service_account:
                env["MODELCATALOG_TOKEN_FILE"] = str(await self._token_file())
            try:
                mounts = await self._write_secret_volumes()
                env |= await self._secret_env()
            except ApiError as error:  # the kubelet would wait in ContainerCreating
                log.warning("%s: a Secret volume cannot be mounted yet: %s", launch.key, error)
                await asyncio.sleep(RESTART_BACKOFF_SECONDS[min(failures, len(RESTART_BACKOFF_SECONDS) - 1)])
                failures += 1
                continue
            env = {k: remap(v, mounts) for k, v in env.items()}
            argv = [remap(a, mounts) for a in launch.argv]
            log_file = self.workdir / f"{launch.namespace}_{launch.name}.log"
            with log_file.open("ab") as output:
                process = await asyncio.create_subprocess_exec(*argv, env=env, stdout=output, stderr=output)
            probing = asyncio.create_task(self._probe_until_exit(process))
            try:
                returncode = await process.wait()
            finally:
                probing.cancel()
                await _terminate(process)
            await self._set_ready(False)
            log.info("%s exited with %s", launch.key, returncode)
            if not should_restart(launch.restart_policy, returncode):
                return
            await asyncio.sleep(RESTART_BACKOFF_SECONDS[min(failures, len(RESTART_BACKOFF_SECONDS) - 1)])
            failures += 1

    async def _token_file(self) -> Path:
        launch = self.launch
        path = f"/api/v1/namespaces/{launch.namespace}/serviceaccounts/{launch.service_account}/token"
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": TOKEN_SECONDS,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": launch.name, "uid": launch.uid},
            },
        }
        token = (await self.client.post(path, request))["status"]["token"]
        target = self.workdir / f"{launch.namespace}_{launch.name}.token"
        with tempfile.NamedTemporaryFile("w", dir=self.workdir, delete=False) as handle:
            handle.write(token)
        os.chmod(handle.name, 0o600)
        os.replace(handle.name, target)
        return target

    async def _secret_env(self) -> dict[str, str]:
        """env valueFrom.secretKeyRef, read as the kubelet would when it starts the container."""
        found = {}
        for variable, name, key in self.launch.secret_env:
            secret = await self.client.get("v1", "Secret", name, self.launch.namespace)
            value = ((secret or {}).get("data") or {}).get(key)
            if value is None:
                raise ApiError(404, "NotFound", f"secret {name!r} has no key {key!r}")
            found[variable] = base64.b64decode(value).decode()
        return found

    async def _write_secret_volumes(self) -> dict[str, Path]:
        """Each mounted Secret's keys as files (mode 0600) under the workdir; mount path -> local dir."""
        launch = self.launch
        found = {}
        for mount in launch.secret_mounts:
            secret = await self.client.get("v1", "Secret", mount.secret, launch.namespace)
            if secret is None:
                raise ApiError(404, "NotFound", f"secret {mount.secret!r} not found")
            directory = self.workdir / f"{launch.namespace}_{launch.name}.volumes" / mount.volume
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            for key, value in (secret.get("data") or {}).items():
                target = directory / key
                target.write_bytes(base64.b64decode(value))
                target.chmod(0o600)
            found[mount.path] = directory
        return found

    async def _probe_until_exit(self, process: asyncio.subprocess.Process) -> None:
        launch = self.launch
        scheme = "https" if launch.probe_scheme == "HTTPS" else "http"
        url = f"{scheme}://{launch.ip}:{launch.probe_port}{launch.probe_path or '/'}"
        timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_SECONDS)
        # Like the kubelet, an HTTPS probe does not verify the certificate.
        connector = aiohttp.TCPConnector(ssl=False)
        failures = 0
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            while process.returncode is None:
                failures = 0 if await _answers(session, url) else failures + 1
                await self._set_ready(is_ready(self._ready, failures, launch.probe_failures))
                await asyncio.sleep(PROBE_SECONDS)

    async def _set_ready(self, ready: bool) -> None:
        if ready == self._ready:
            return
        path = f"/api/v1/namespaces/{self.launch.namespace}/pods/{self.launch.name}/status"
        try:
            await self.client.strategic_patch(path, ready_patch(ready))
            self._ready = ready
        except ApiError as error:
            log.warning("could not mark %s ready=%s: %s", self.launch.key, ready, error)

    async def stop(self, graceful: bool = False) -> None:
        """Stop the process; `graceful` (the pod is being deleted) runs the preStop sleep first, as a kubelet."""
        if graceful and self.launch.pre_stop_seconds:
            await asyncio.sleep(self.launch.pre_stop_seconds)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def _answers(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url) as response:
            return 200 <= response.status < 400
    except (aiohttp.ClientError, TimeoutError):
        return False


async def _terminate(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()


class ServiceProxy:
    """ClusterIP:port -> a ready pod of the Service's selector (TCP, one connection at a time each)."""

    def __init__(self, runner: PodRunner, service: dict[str, Any], port: dict[str, Any]) -> None:
        self.runner = runner
        self.namespace = service["metadata"]["namespace"]
        self.selector = service["spec"].get("selector") or {}
        self.target = port.get("targetPort", port["port"])
        self.server: asyncio.Server | None = None

    async def start(self, ip: str, port: int) -> None:
        self.server = await asyncio.start_server(self._connect, ip, port)

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A pod kwok marked Ready before its process listens is skipped, as a Service would not list it yet.
        for backend in self.runner.backends_for(self.namespace, self.selector, self.target):
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*backend)
            except OSError:
                continue
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            return
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


class PodRunner:
    def __init__(self, client: KubeClient, api: ApiServer, workdir: Path, settings: Settings) -> None:
        self.client = client
        self.api = api
        self.workdir = workdir
        self.images = known_images(settings)
        self.pods: dict[str, dict[str, Any]] = {}
        self.processes: dict[str, PodProcess] = {}
        self.proxies: dict[str, list[ServiceProxy]] = {}
        self.stopping: dict[asyncio.Task[None], str] = {}  # a deleted pod's process still stopping -> its IP

    async def on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        launch = None if kind == "DELETED" else launch_for(pod, self.images, self.api)
        if kind == "DELETED":
            self.pods.pop(key, None)
        else:
            self.pods[key] = pod
        running = self.processes.get(key)
        if running is not None and (launch is None or launch.uid != running.launch.uid):
            stopping = asyncio.get_running_loop().create_task(self.processes.pop(key).stop(graceful=True))
            self.stopping[stopping] = running.launch.ip
            stopping.add_done_callback(lambda task: self.stopping.pop(task, None))
            running = None
        if launch is not None and running is None:
            held = tuple(task for task, ip in self.stopping.items() if ip == launch.ip)
            self.processes[key] = PodProcess(launch, self.client, self.workdir, held)

    async def on_service(self, kind: str, service: dict[str, Any]) -> None:
        key = f"{service['metadata']['namespace']}/{service['metadata']['name']}"
        for proxy in self.proxies.pop(key, []):
            await proxy.stop()
        ip = (service.get("spec") or {}).get("clusterIP") or ""
        if kind == "DELETED" or not is_loopback(ip):
            return
        proxies = []
        for port in service["spec"].get("ports") or []:
            if port.get("protocol", "TCP") != "TCP":
                continue
            proxy = ServiceProxy(self, service, port)
            try:
                await proxy.start(ip, int(port["port"]))
            except OSError as error:
                log.warning("cannot forward %s %s:%s: %s", key, ip, port["port"], error)
                continue
            proxies.append(proxy)
        self.proxies[key] = proxies

    def backends_for(self, namespace: str, selector: dict[str, str], target: int | str) -> list[tuple[str, int]]:
        """The ready pods behind the Service, in random order per connection (kube-proxy's iptables mode picks
        one at random)."""
        backends = []
        for pod in self.pods.values():
            meta = pod["metadata"]
            labels = meta.get("labels") or {}
            if meta["namespace"] != namespace or any(labels.get(k) != v for k, v in selector.items()):
                continue
            status = pod.get("status") or {}
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
            containers = (pod.get("spec") or {}).get("containers") or []
            port = next((p for c in containers if (p := resolve_port(c, target)) is not None), None)
            if ready and status.get("podIP") and port is not None:
                backends.append((str(status["podIP"]), port))
        random.shuffle(backends)  # load spreading, not security
        return backends

    async def follow(self, path: str, handler: Any) -> None:
        """List, then watch from the list's resourceVersion; list again when the watch expires."""
        while True:
            try:
                listed = await self.client.get_path(path) or {}
                for item in listed.get("items") or []:
                    await handler("ADDED", item)
                version = listed.get("metadata", {}).get("resourceVersion", "")
                params = {"resourceVersion": version, "timeoutSeconds": str(WATCH_SECONDS)}
                while True:
                    async for event in self.client.watch(path, params, WATCH_SECONDS + 30):
                        if event.get("type") == "ERROR":
                            raise ApiError(410, "Expired", "watch expired")
                        await handler(event["type"], event["object"])
                        params["resourceVersion"] = event["object"]["metadata"]["resourceVersion"]
            except (ApiError, OSError, TimeoutError, aiohttp.ClientError) as error:
                log.warning("watch of %s restarts: %s", path, error)
                await asyncio.sleep(1)

    async def run(self) -> None:
        try:
            await asyncio.gather(
                self.follow("/api/v1/pods", self.on_pod), self.follow("/api/v1/services", self.on_service)
            )
        finally:
            for task in list(self.stopping):
                task.cancel()
            for process in self.processes.values():
                await process.stop()
            for proxies in self.proxies.values():
                for proxy in proxies:
                    await proxy.stop()


def api_server(kubeconfig: str) -> ApiServer:
    """The API server's real address and CA file, from the kubeconfig the test bed wrote."""
    import kubernetes

    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=config)
    url = urlsplit(config.host)
    return ApiServer(url.hostname or "127.0.0.1", str(url.port or 443), str(config.ssl_ca_cert or ""))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m modelcatalog.localcluster.podrunner", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--workdir", type=Path, default=Path(".work/pods"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.workdir.mkdir(parents=True, exist_ok=True)

    async def run() -> None:
        client = KubeClient.from_config(args.kubeconfig)
        runner = asyncio.create_task(
            PodRunner(client, api_server(args.kubeconfig), args.workdir, Settings.from_env()).run()
        )
        # SIGTERM (LocalCluster.down) stops every pod's process before the runner exits.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, runner.cancel)
        try:
            await runner
        except asyncio.CancelledError:
            log.info("stopped")
        finally:
            await client.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()

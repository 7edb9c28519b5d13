"""Faults: a fuzzed corpus of specs, and a kill -9 in the middle of a burst (`python -m bench faults`).

The tests (tests/integration/test_faults.py) run the same code at a small size.

The corpus comes from the pydantic models' JSON schemas (the ones the CRDs are generated from): a
hypothesis strategy per schema node, valid by construction, and an invalid variant of each document
with one field replaced by a wrong-typed or out-of-range value, an unknown field, or a required field
removed. hypothesis-jsonschema 0.23.1 does not run with hypothesis 6.170 ('many' object has no
attribute 'more'), hence this small generator for the subset pydantic emits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from modelcatalog.api.deployment import DeploymentPhase
from modelcatalog.api.network import NetworkPhase
from modelcatalog.kube.client import ApiError, KubeClient
from modelcatalog.kube.resources import resource
from modelcatalog.localcluster.launcher import OperatorProcess
from modelcatalog.localcluster.release import ChartOperator

GROUP, VERSION = "modelcatalog.io", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
Json = Any

# Names the catalog has, so that most documents get past "unknown model" to placement and children.
MODELS = ["meta-llama-3-8b-instruct", "meta-llama-3-70b-instruct", "phi-3-mini-4k-instruct", "gpt-5-1", "llama-2-7b"]
INSTANCE_TYPES = ["standard-nc24ads-a100-v4", "standard-nd96isr-h100-v5", "standard-nc4as-t4-v3", "standard-d4s-v5"]


def _mostly(known: list[str]) -> st.SearchStrategy[str]:
    """One of `known` 4 times in 5, else a made-up name (a branch repeated in one_of was not weighted by it)."""
    made_up = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
    return st.integers(0, 4).flatmap(lambda n: made_up if n == 0 else st.sampled_from(known))


def _hints() -> dict[str, st.SearchStrategy[Json]]:
    """Fields whose valid values are drawn mostly from what the cluster knows, not from the whole schema."""
    return {
        "model": _mostly(MODELS),
        "instanceType": _mostly(INSTANCE_TYPES),
        # No replicas for most, so that pods do not pile up on the test cluster's few GPU nodes.
        "instanceCount": st.sampled_from([0] * 9 + [1]),
        "trafficPercent": st.sampled_from([100, 100, 0, 50]),
        "cidrs": st.lists(st.sampled_from(["10.8.0.0/16", "203.0.113.0/24", "2001:db8::/32"]), max_size=2),
        "allowedIpRanges": st.lists(st.sampled_from(["10.0.0.0/8", "198.51.100.7/32"]), max_size=2),
        "destination": st.sampled_from(["10.0.0.0/8", "huggingface.co", "*.example.com"]),
    }


class Schema:
    """Hypothesis strategies for one model's JSON schema: valid documents, and documents one edit away."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.root = model.model_json_schema(by_alias=True)
        self.defs: dict[str, Json] = self.root.get("$defs", {})
        self.hints = _hints()

    def resolve(self, schema: Json) -> Json:
        while "$ref" in schema:
            schema = self.defs[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def valid(self, schema: Json | None = None, name: str = "") -> st.SearchStrategy[Json]:
        schema = self.resolve(self.root if schema is None else schema)
        if name in self.hints:
            return self.hints[name]
        if "anyOf" in schema:
            return st.one_of([self.valid(s, name) for s in schema["anyOf"] if s.get("type") != "null"])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        kind = schema.get("type")
        if kind == "object":
            props = schema.get("properties")
            if props is None:  # a map (matchLabels)
                label = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
                return st.dictionaries(label, label, max_size=2)
            required = set(schema.get("required", []))
            return st.fixed_dictionaries(
                {k: self.valid(v, k) for k, v in props.items() if k in required},
                optional={k: self.valid(v, k) for k, v in props.items() if k not in required},
            )
        if kind == "array":
            items = schema.get("items", {"type": "string"})
            return st.lists(self.valid(items, name), max_size=min(2, schema.get("maxItems", 2)))
        if kind == "integer":
            return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31))
        if kind == "boolean":
            return st.booleans()
        if kind == "string":
            low, high = schema.get("minLength", 0), min(schema.get("maxLength", 40), 40)
            if "pattern" in schema:
                text = st.from_regex(schema["pattern"], fullmatch=True)
                return text.filter(lambda s: low <= len(s) <= high and s.isascii())
            return st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=max(low, 1), max_size=high)
        return st.none()

    def invalid(self, schema: Json, name: str = "") -> st.SearchStrategy[Json]:
        """A value the schema refuses: the wrong type, or out of its bounds."""
        schema = self.resolve(schema)
        if "anyOf" in schema:
            return st.one_of([self.invalid(s, name) for s in schema["anyOf"] if s.get("type") != "null"])
        wrong = {
            "integer": st.sampled_from(["3", 1.5, True, [1]]),
            "string": st.sampled_from([7, True, {"a": "b"}]),
            "object": st.sampled_from(["x", 3, [{}]]),
            "array": st.sampled_from(["10.0.0.0/8", {"a": 1}]),
        }.get(schema.get("type", "string"), st.just([]))
        options = [wrong]
        if "minimum" in schema or "maximum" in schema:
            options.append(st.sampled_from([schema.get("minimum", 0) - 1, schema.get("maximum", 0) + 1, 2**40]))
        if "enum" in schema:
            options.append(st.sampled_from(["", "enabled", "Both"]))
        if "pattern" in schema:
            options.append(st.sampled_from(["UPPER", "-dash", "a b", "x" * 300]))
        if schema.get("type") == "array" and "maxItems" in schema:
            options.append(st.just([self.resolve(schema["items"]).get("default", "10.0.0.0/8")] * 200))
        return st.one_of(options)

    def paths(self, schema: Json | None = None, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Json]]:
        """Every field reachable from the root (through objects, not into arrays), with its schema."""
        schema = self.resolve(self.root if schema is None else schema)
        found = []
        for key, sub in (schema.get("properties") or {}).items():
            path = (*prefix, key)
            found.append((path, sub))
            inner = self.resolve(sub)
            for option in inner.get("anyOf", [inner]):
                if self.resolve(option).get("type") == "object":
                    found.extend(self.paths(option, path))
        return found

    def documents(self) -> st.SearchStrategy[tuple[str, Json]]:
        """(how it was made, the document): valid, or one edit away from valid."""
        paths = self.paths()

        @st.composite
        def broken(draw: st.DrawFn) -> tuple[str, Json]:
            document = draw(self.valid())
            mode = draw(st.sampled_from(["value", "value", "unknown", "missing"]))
            path, sub = draw(st.sampled_from(paths))
            if mode == "missing":
                required = self.root.get("required", [])
                if not required:
                    mode = "unknown"
                else:
                    document.pop(draw(st.sampled_from(required)), None)
                    return "missing-required", document
            target = document
            for key in path[:-1]:
                if not isinstance(target.get(key), dict):
                    target[key] = {}
                target = target[key]
            if mode == "unknown":
                target["notAField"] = 1
                return f"unknown-field:{'.'.join(path[:-1]) or 'spec'}", document
            target[path[-1]] = draw(self.invalid(sub, path[-1]))
            return f"invalid:{'.'.join(path)}", document

        return st.one_of(self.valid().map(lambda d: ("valid", d)), broken())


def corpus(model: type[BaseModel], count: int, fixed_seed: int = 20) -> list[tuple[str, Json]]:
    """`count` documents, the same ones for the same seed."""
    schema = Schema(model)
    found: list[tuple[str, Json]] = []

    @settings(max_examples=count * 3, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @seed(fixed_seed)
    @given(schema.documents())
    def collect(document: tuple[str, Json]) -> None:
        if document not in found:
            found.append(document)

    collect()
    return found[:count]


# Applying the corpus and judging the outcome.

PHASES = {"ModelDeployment": {str(p) for p in DeploymentPhase}, "WorkspaceNetwork": {str(p) for p in NetworkPhase}}
FIELD = re.compile(r"spec(\.[A-Za-z]|\[|:)|\.spec\.|metadata\.name")


@dataclass
class Outcome:
    kind: str
    namespace: str
    name: str
    made: str
    spec: Json
    refused: str | None = None  # the API server's message, when it refused the object
    status: dict[str, Any] = field(default_factory=dict)

    def problem(self) -> str | None:
        """What is wrong with this outcome, or None."""
        if self.refused is not None:
            return None if FIELD.search(self.refused) else f"refused without naming a field: {self.refused}"
        ready = next((c for c in self.status.get("conditions") or [] if c.get("type") == "Ready"), {})
        if self.status.get("phase") not in PHASES[self.kind]:
            return f"no phase (status {self.status})"
        if not ready.get("reason"):
            return f"no Ready condition with a reason (status {self.status})"
        return None


def manifests(kind: str, namespace_of: Callable[[int], str], documents: list[tuple[str, Json]]) -> list[Outcome]:
    prefix = "md" if kind == "ModelDeployment" else "wn"
    return [Outcome(kind, namespace_of(i), f"{prefix}-{i}", made, spec) for i, (made, spec) in enumerate(documents)]


async def apply_all(kubeconfig: Path, outcomes: list[Outcome], concurrency: int = 16) -> None:
    """Server-side apply each as `kubectl apply --server-side` would (strict field validation)."""
    client = KubeClient.from_config(str(kubeconfig))
    slots = asyncio.Semaphore(concurrency)

    async def one(outcome: Outcome) -> None:
        meta = {"name": outcome.name, "namespace": outcome.namespace}
        manifest = {"apiVersion": API_VERSION, "kind": outcome.kind, "metadata": meta, "spec": outcome.spec}
        path = resource(API_VERSION, outcome.kind).path(outcome.namespace, outcome.name)
        params = {"fieldManager": "fuzz", "force": "true", "fieldValidation": "Strict"}
        async with slots:
            try:
                await client._request("PATCH", path, manifest, params, content_type="application/apply-patch+yaml")
            except ApiError as error:
                outcome.refused = str(error)

    try:
        await asyncio.gather(*(one(o) for o in outcomes))
    finally:
        await client.close()


async def settle_all(kubeconfig: Path, outcomes: list[Outcome], seconds: float) -> list[Outcome]:
    """Wait until every accepted object has a status for its generation; the ones that never did are returned."""
    client = KubeClient.from_config(str(kubeconfig))
    waiting = [o for o in outcomes if o.refused is None]
    deadline = time.monotonic() + seconds
    try:
        while waiting and time.monotonic() < deadline:
            still = []
            for outcome in waiting:
                body = await client.get(API_VERSION, outcome.kind, outcome.name, outcome.namespace) or {}
                outcome.status = body.get("status") or {}
                generation = (body.get("metadata") or {}).get("generation")
                if outcome.status.get("observedGeneration") != generation or outcome.problem() is not None:
                    still.append(outcome)
            waiting = still
            if waiting:
                await asyncio.sleep(0.5)
    finally:
        await client.close()
    return waiting


def metrics_text(operator: OperatorProcess | ChartOperator) -> str:
    with urllib.request.urlopen(operator.metrics_url, timeout=5) as response:  # noqa: S310 (loopback)
        return str(response.read().decode())


def other_retries(metrics_text: str) -> dict[tuple[str, str], float]:
    """Reconciles that failed with something other than an API error (reason api-NNN), by kind and reason:
    a crash of the reconcile. (modelcatalog_reconciles_total{result="error"} counts both.)"""
    pattern = r'^modelcatalog_retries_total\{kind="([^"]+)",reason="([^"]+)"\} (\S+)$'
    found = re.findall(pattern, metrics_text, re.MULTILINE)
    return {(kind, reason): float(v) for kind, reason, v in found if not reason.startswith("api-") and float(v)}


# kill -9 in the middle of a burst: what must hold once the operator is back.

CHILD_KINDS = ("Deployment", "Service", "PodDisruptionBudget")


def burst_manifest(namespace: str, index: int, pairs: int) -> dict[str, Any]:
    """md-<index>, instanceCount 0; the first `pairs` x 2 share an endpoint two by two (50 % each)."""
    spec: dict[str, Any] = {"model": MODELS[0], "instanceType": INSTANCE_TYPES[0], "instanceCount": 0}
    if index < pairs * 2:
        spec |= {"endpointName": f"shared-{index // 2}", "trafficPercent": 50}
    return {"apiVersion": API_VERSION, "kind": "ModelDeployment",
            "metadata": {"name": f"md-{index}", "namespace": namespace}, "spec": spec}  # fmt: skip


def convergence_problems(api: kubernetes.client.ApiClient, namespace: str, replicas: dict[str, int]) -> list[str]:
    """Duplicates, orphans and lost updates among the ModelDeployments of `namespace` and their children.

    `replicas`: the instanceCount each ModelDeployment was last given (edits made while the operator was dead)."""
    custom = kubernetes.client.CustomObjectsApi(api)
    core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
    policy = kubernetes.client.PolicyV1Api(api)
    objects = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments")["items"]
    uids = {o["metadata"]["uid"]: o["metadata"]["name"] for o in objects}
    endpoints = {(o["spec"].get("endpointName") or o["metadata"]["name"]) for o in objects if
                 o["spec"].get("authMode", "key") == "key"}  # fmt: skip
    selector = "app.kubernetes.io/managed-by=modelcatalog"
    children = {
        "Deployment": apps.list_namespaced_deployment(namespace, label_selector=selector).items,
        "Service": core.list_namespaced_service(namespace, label_selector=selector).items,
        "PodDisruptionBudget": policy.list_namespaced_pod_disruption_budget(namespace, label_selector=selector).items,
        "Secret": core.list_namespaced_secret(namespace, label_selector=selector).items,
    }
    problems = []
    for kind, items in children.items():
        for child in items:
            owners = [r.uid for r in child.metadata.owner_references or [] if r.kind == "ModelDeployment"]
            if (child.metadata.labels or {}).get("modelcatalog.io/owner-kind") in ("ModelDeployment", "Endpoint") and (
                not owners or any(uid not in uids for uid in owners)
            ):
                problems.append(f"orphan {kind}/{child.metadata.name} (owners {owners})")
    for kind in CHILD_KINDS:
        count = Counter(
            (c.metadata.labels or {}).get("modelcatalog.io/owner-name")
            for c in children[kind]
            if (c.metadata.labels or {}).get("modelcatalog.io/owner-kind") == "ModelDeployment"
        )
        for name in uids.values():
            if count[name] != 1:
                problems.append(f"{count[name]} {kind}s of ModelDeployment {name}, not 1")
    secrets = Counter(
        (s.metadata.labels or {}).get("modelcatalog.io/owner-name")
        for s in children["Secret"]
        if (s.metadata.labels or {}).get("modelcatalog.io/owner-kind") == "Endpoint"
    )
    for endpoint in endpoints:
        if secrets[endpoint] != 1:
            problems.append(f"{secrets[endpoint]} keys Secrets of endpoint {endpoint}, not 1")
    deployments = {d.metadata.name: d for d in children["Deployment"]}
    for name, count in replicas.items():
        if name in deployments and deployments[name].spec.replicas != count:
            problems.append(
                f"lost update: Deployment {name} has {deployments[name].spec.replicas} replicas, not {count}"
            )
    return problems


# `python -m bench faults`: the same at full size, on a fresh local cluster of its own.


def fuzz_bench(kubeconfig: Path, operator: OperatorProcess, kubectl: Callable[..., str], count: int) -> list[str]:
    """Apply `count` fuzzed specs (60 % ModelDeployment, 40 % WorkspaceNetwork); the failures found."""
    from modelcatalog.api.deployment import ModelDeploymentSpec
    from modelcatalog.api.network import WorkspaceNetworkSpec

    spaces = [f"fuzz-md-{i}" for i in range(10)] + [f"fuzz-wn-{i}" for i in range(100)]
    kubectl("apply", "-f", "-", stdin="".join(f"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {n}\n"
                                               for n in spaces))  # fmt: skip
    started = time.monotonic()
    documents = corpus(ModelDeploymentSpec, count * 6 // 10), corpus(WorkspaceNetworkSpec, count - count * 6 // 10)
    print(f"  corpus of {sum(map(len, documents))} specs generated in {time.monotonic() - started:.1f} s")
    outcomes = manifests("ModelDeployment", lambda i: spaces[i % 10], documents[0])
    outcomes += manifests("WorkspaceNetwork", lambda i: spaces[10 + i % 100], documents[1])
    before = other_retries(metrics_text(operator))
    started = time.monotonic()
    asyncio.run(apply_all(kubeconfig, outcomes))
    unsettled = asyncio.run(settle_all(kubeconfig, outcomes, seconds=600))
    seconds = time.monotonic() - started
    refused = [o for o in outcomes if o.refused is not None]
    phases = Counter(f"{o.kind}/{o.status.get('phase')}" for o in outcomes if o.refused is None)
    made = Counter(o.made.split(":")[0] for o in outcomes)
    print(f"  made: {dict(made)}")
    print(f"  {len(refused)} refused at apply, {len(outcomes) - len(refused)} accepted; settled in {seconds:.1f} s")
    print(f"  phases: {dict(sorted(phases.items()))}")
    failures = [f"{o.kind} {o.name} ({o.made}) {o.spec}: {o.problem() or 'no status'}" for o in unsettled]
    failures += [f"{o.kind} {o.name} ({o.made}) {o.spec}: {p}" for o in outcomes if (p := o.problem())]
    if other_retries(metrics_text(operator)) != before:
        failures.append(f"reconciles failed with other than API errors: {other_retries(metrics_text(operator))}")
    if "Traceback" in operator.log.read_text(errors="replace"):
        failures.append("a Traceback in the operator's log " + str(operator.log))
    return failures


def kill_bench(
    kubeconfig: Path, operator: OperatorProcess, kubectl: Callable[..., str], count: int, spread: int = 50
) -> list[str]:
    """kill -9 halfway through a burst of `count`; while dead: edits, deletions, additions; then converge."""
    api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    spaces = [f"kill-{i}" for i in range(spread)]
    kubectl("apply", "-f", "-", stdin="".join(f"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {n}\n"
                                               for n in spaces))  # fmt: skip
    per = count // spread
    burst = [Outcome("ModelDeployment", ns, m["metadata"]["name"], "burst", m["spec"])
             for ns in spaces for m in (burst_manifest(ns, i, 3) for i in range(per))]  # fmt: skip
    started_reconciles = operator.metric("modelcatalog_reconciles_total")
    started = time.monotonic()
    asyncio.run(apply_all(kubeconfig, burst))
    while operator.metric("modelcatalog_reconciles_total") < started_reconciles + len(burst) // 2:
        time.sleep(0.05)
    operator.kill()
    killed_at = time.monotonic() - started
    done = len(kubectl("get", "deployments", "-A", "-l", "modelcatalog.io/owner-kind=ModelDeployment", "-o", "name")
               .split())  # fmt: skip
    edited = [o for o in burst if o.name == f"md-{per - 1}"]  # one per namespace: instanceCount 0 -> 1
    for outcome in edited:
        outcome.spec = outcome.spec | {"instanceCount": 1}
    deleted = [o for o in burst if o.name == "md-0"]  # one of a shared endpoint's pair, per namespace
    added = [Outcome("ModelDeployment", ns, "md-late", "burst", burst_manifest(ns, 99, 0)["spec"]) for ns in spaces]
    asyncio.run(apply_all(kubeconfig, edited + added))
    for outcome in deleted:
        kubectl("delete", "modeldeployment", outcome.name, "-n", outcome.namespace, "--wait=false")
    print(f"  killed {killed_at:.1f} s into the burst, {done} of {len(burst)} Deployments applied;"
          f" while dead: {len(edited)} edits, {len(deleted)} deletions, {len(added)} new")  # fmt: skip
    started = time.monotonic()
    operator.start()
    survivors = [o for o in burst if o not in deleted] + added
    unsettled = asyncio.run(settle_all(kubeconfig, survivors, seconds=900))
    seconds = time.monotonic() - started
    deadline, problems = time.monotonic() + 120, ["not checked"]
    while problems and time.monotonic() < deadline:
        problems = [p for ns in spaces for p in convergence_problems(api, ns, {"md-" + str(per - 1): 1})]
        time.sleep(1)
    print(f"  after restart: every object's status current in {seconds:.1f} s; children checked"
          f" {time.monotonic() - started:.1f} s after start: {len(problems)} problems")  # fmt: skip
    failures = [f"no status: {o.namespace}/{o.name}" for o in unsettled] + problems
    if "Traceback" in operator.log.read_text(errors="replace"):
        failures.append("a Traceback in the operator's log " + str(operator.log))
    return failures


# An API server restart: kwokctl's binary runtime starts each component once and does not restart it, so
# the API server is killed and started again with the command line, environment and folder it had.


# They exit when their leader lease lapses while the API server is down (a kubelet would restart them; kwokctl's
# binary runtime does not), so they are restarted with it.
WITH_THE_APISERVER = ("kube-controller-manager", "kube-scheduler")


@dataclass(frozen=True)
class Component:
    """A control-plane process as kwokctl started it: enough to start it again the same way."""

    name: str
    pid: int
    command: list[bytes]
    env: dict[bytes, bytes]
    cwd: Path

    @classmethod
    def of(cls, cluster_dir: Path, name: str) -> Component:
        pid = int((cluster_dir / "pids" / f"{name}.pid").read_text().strip())
        proc = Path(f"/proc/{pid}")
        command = proc.joinpath("cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        pairs = proc.joinpath("environ").read_bytes().split(b"\0")
        env = dict(item.split(b"=", 1) for item in pairs if b"=" in item)
        return cls(name, pid, command, env, proc.joinpath("cwd").resolve())

    def kill(self) -> None:
        proc = Path(f"/proc/{self.pid}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        while proc.exists() and "Z" not in proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[:1]:
            time.sleep(0.05)

    def start(self, cluster_dir: Path) -> None:
        with (cluster_dir / "logs" / f"{self.name}.log").open("ab") as log:
            started = subprocess.Popen(
                self.command, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        (cluster_dir / "pids" / f"{self.name}.pid").write_text(str(started.pid))  # kwokctl delete stops it by this


def restart_apiserver(cluster_dir: Path, down_seconds: float = 3.0) -> None:
    """kill -9 the local cluster's kube-apiserver, and start it again the way kwokctl did `down_seconds` later
    (with the components that would exit meanwhile)."""
    apiserver = Component.of(cluster_dir, "kube-apiserver")
    others = [Component.of(cluster_dir, name) for name in WITH_THE_APISERVER]
    apiserver.kill()
    time.sleep(down_seconds)
    apiserver.start(cluster_dir)
    for component in others:
        component.kill()
        component.start(cluster_dir)


def apiserver_bench(
    kubeconfig: Path, cluster_dir: Path, operator: OperatorProcess, kubectl: Callable[..., str], count: int
) -> list[str]:
    """The API server killed and restarted (5 s down) a quarter into a burst of `count`; all must converge."""
    api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    spaces = [f"apiserver-{i}" for i in range(10)]
    kubectl("apply", "-f", "-", stdin="".join(f"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {n}\n"
                                               for n in spaces))  # fmt: skip
    burst = [Outcome("ModelDeployment", ns, m["metadata"]["name"], "burst", m["spec"])
             for ns in spaces for m in (burst_manifest(ns, i, 3) for i in range(count // 10))]  # fmt: skip
    before = operator.metric("modelcatalog_reconciles_total")
    started = time.monotonic()
    asyncio.run(apply_all(kubeconfig, burst))
    while operator.metric("modelcatalog_reconciles_total") < before + len(burst) // 4:
        time.sleep(0.05)
    at = time.monotonic() - started
    restart_apiserver(cluster_dir, down_seconds=5)
    while kubectl("get", "--raw", "/readyz", check=False).strip() != "ok":
        time.sleep(0.2)
    unsettled = asyncio.run(settle_all(kubeconfig, burst, seconds=900))
    seconds = time.monotonic() - started
    problems = [p for ns in spaces for p in convergence_problems(api, ns, {})]
    alive = operator.process is not None and operator.process.poll() is None
    print(f"  API server killed {at:.1f} s into a burst of {len(burst)}, back 5 s later; every status current"
          f" {seconds:.1f} s after the burst began; {len(problems)} problems; operator alive: {alive}")  # fmt: skip
    return [f"no status: {o.namespace}/{o.name}" for o in unsettled] + problems + ([] if alive else ["operator died"])

"""`modelcatalog demo`: the local cluster, the CRDs and catalog, the operator, the examples, and a tour."""

from __future__ import annotations

import argparse
import json
import time

from modelcatalog.cli.errors import CliError, ExitCode
from modelcatalog.localcluster import ClusterStartError, LocalCluster
from modelcatalog.localcluster.cluster import REPO_ROOT
from modelcatalog.localcluster.launcher import OperatorProcess

NAMESPACE = "demo"
READY = ("llama3-chat", "mistral-blue", "mistral-green")
PENDING = "mixtral-large"


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = groups.add_parser("demo", help="start the local cluster, the operator and the examples, and show them")
    parser.add_argument("--name", default="modelcatalog", help="cluster name (default: modelcatalog)")
    parser.set_defaults(run=run)


def step(text: str) -> float:
    print(f"==> {text}", flush=True)
    return time.monotonic()


def done(started: float) -> None:
    print(f"    done in {time.monotonic() - started:.1f} s", flush=True)


def run(args: argparse.Namespace) -> int:
    cluster = LocalCluster(args.name)
    started = step("obtaining the control-plane binaries (first time: builds from Go modules, ~15-25 minutes)")
    cluster.tool("kubectl")
    done(started)
    started = step("starting etcd, kube-apiserver, controller-manager, scheduler and kwok with GPU node pools")
    try:
        cluster.up()
    except ClusterStartError as error:
        raise CliError(str(error), ExitCode.UNAVAILABLE) from error
    done(started)
    started = step("installing the CRDs and the default catalog")
    cluster.install()
    done(started)
    operator = OperatorProcess(cluster.kubeconfig, cluster.workdir, detached=True)
    started = step("starting the operator")
    operator.start()
    print(f"    log: {operator.log.relative_to(REPO_ROOT)}")
    done(started)
    started = step(f"applying examples/ in namespace {NAMESPACE} and waiting for the deployments")
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    cluster.kubectl("label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    cluster.kubectl("apply", "-n", NAMESPACE, "-f", str(REPO_ROOT / "examples"))
    for name in READY:
        cluster.kubectl("wait", "-n", NAMESPACE, "--for=condition=Ready", f"modeldeployment/{name}", "--timeout=180s")
    wait_pending_reason(cluster)
    done(started)
    tour(cluster)
    return ExitCode.OK


def wait_pending_reason(cluster: LocalCluster, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = json.loads(cluster.kubectl("get", "md", PENDING, "-n", NAMESPACE, "-o", "json")).get("status", {})
        if status.get("phase") == "Pending":
            return
        time.sleep(1)
    raise CliError(f"{PENDING} did not report Pending within {timeout:.0f} s; see .work/operator.log")


def tour(cluster: LocalCluster) -> None:
    kubectl = cluster.kubectl
    print("\n--- The catalog: models you can deploy on managed compute, chat tasks")
    print(
        kubectl(
            "get",
            "catalogmodels",
            "-l",
            "modelcatalog.io/managed-compute=true,task.modelcatalog.io/chat-completion=true",
        )
    )
    print("--- Instance types (GPU SKUs mapped to node pools) and the node pools of this cluster")
    print(kubectl("get", "instancetypes"))
    print(kubectl("get", "nodes", "-L", "modelcatalog.io/node-pool", "-L", "nvidia.com/gpu.count"))
    print(f"--- Deployments in namespace {NAMESPACE}")
    print(kubectl("get", "modeldeployments", "-n", NAMESPACE, "-o", "wide"))
    capacity = kubectl("get", "md", PENDING, "-n", NAMESPACE, "-o",
                       "jsonpath={.status.conditions[?(@.type=='CapacityAvailable')].message}")  # fmt: skip
    print(f"--- Why {PENDING} is Pending:\n    {capacity}\n")
    print("--- Children of llama3-chat (keys live only in the Secret)")
    print(kubectl("get", "deployments,services,secrets,pdb,pods", "-n", NAMESPACE,
                  "-l", "modelcatalog.io/owner-name in (llama3-chat)"))  # fmt: skip
    print("--- The workspace's network setting, and the policies that enforce it for every endpoint")
    print(kubectl("get", "workspacenetworks", "-n", NAMESPACE))
    print(kubectl("get", "networkpolicies", "-n", NAMESPACE, check=False) or "    (none yet)\n")
    print("Continue with kubectl:")
    print(f"    export KUBECONFIG={cluster.kubeconfig} PATH={cluster.tools}:$PATH")
    print(f"    kubectl describe modeldeployment {PENDING} -n {NAMESPACE}")
    print("    .venv/bin/modelcatalog models show meta-llama-3-8b-instruct")
    print("Stop everything (the cluster and the operator): make cluster-down")

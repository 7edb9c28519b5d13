"""The GitOps manifests in examples/gitops/ against the schema their tool publishes (not run: no Argo CD or Flux here).

Argo CD's Application CRD is a file of its Go module (pinned below), fetched through the Go module proxy, the
registry this machine reaches. Flux's CRDs are not in a module the proxy serves (helm-controller's root module
is refused, 403), but they are what controller-gen generates from Flux's API modules, which it serves: the
test generates them the way Flux's Makefiles do, with a pinned controller-gen, from the API modules a Flux
release pins. Each CRD is installed on the test bed and a server-side dry run with strict validation checks
the example against it, so a misspelt or misplaced field fails. The chart values each manifest passes are
checked against the chart's values.schema.json by `helm template`.

Everything fetched or built is cached under ~/.cache/modelcatalog/gitops (the first run builds controller-gen:
about 2 minutes of CPU; later runs reuse the generated CRDs). Without the go command the tests that need
these files skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelcatalog.localcluster.cluster import find_tools
from tests.conftest import REPO
from tests.integration.kube import Kube, wait_for

ARGO_CD = "github.com/argoproj/argo-cd/v3@v3.6.1"
ARGO_CRD = "manifests/crds/application-crd.yaml"
# Flux v2.9.5: its go.mod pins these API modules; they build on Kubernetes 1.36, as controller-gen v0.21 does.
FLUX_API_MODULES = ("github.com/fluxcd/helm-controller/api@v1.6.4", "github.com/fluxcd/source-controller/api@v1.9.5")
CONTROLLER_GEN_VERSION = "v0.21.0"
CACHE = Path.home() / ".cache" / "modelcatalog" / "gitops"
GITOPS = REPO / "examples" / "gitops"
KUBE_VERSION = "1.37.2"  # the test bed's (hack/versions.env): Argo CD and Flux render for their cluster's version
GO_ENV = {**os.environ, "GOTOOLCHAIN": "local", "GOWORK": "off"}  # the machine's Go, no toolchain download


def go(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if shutil.which("go") is None:
        pytest.skip("the go command is needed to fetch the GitOps tools' schemas from the Go module proxy")
    CACHE.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["go", *args], capture_output=True, text=True, check=False, cwd=cwd,
                          env={**GO_ENV, **(env or {})}, timeout=1800)  # fmt: skip


def downloaded_module(module: str) -> dict[str, str]:
    """`go mod download -json` of module@version: where its zip and its unpacked directory are."""
    result = go("mod", "download", "-json", module, cwd=CACHE)
    download: dict[str, str] = json.loads(result.stdout or "{}")  # a "requires go >= ..." error still downloads it
    if not download.get("Zip") or not Path(download["Zip"]).exists():
        raise AssertionError(f"could not download {module}: {result.stdout}{result.stderr}")
    return download


def published_crd(module: str, member: str) -> Path:
    """A file of a Go module, from the module proxy (cached); the module need not build with our Go."""
    target = CACHE / module.replace("/", "_") / member
    if target.exists():
        return target
    with zipfile.ZipFile(downloaded_module(module)["Zip"]) as zipped:
        data = zipped.read(f"{module}/{member}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def controller_gen() -> Path:
    """controller-gen at the pinned version, built once from its module (cached)."""
    target = CACHE / "bin" / f"controller-gen-{CONTROLLER_GEN_VERSION}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    package = f"sigs.k8s.io/controller-tools/cmd/controller-gen@{CONTROLLER_GEN_VERSION}"
    with tempfile.TemporaryDirectory(dir=target.parent) as gobin:
        result = go("install", package, cwd=Path(gobin), env={"GOBIN": gobin})
        if result.returncode != 0:
            raise AssertionError(f"go install {package} failed: {result.stderr}")
        (Path(gobin) / "controller-gen").replace(target)
    return target


def generated_crds(module: str) -> Path:
    """The CRDs of a Go API module, generated as its project's Makefile does (cached): a directory of YAML files."""
    target = CACHE / module.replace("/", "_") / f"crds-controller-gen-{CONTROLLER_GEN_VERSION}"
    if target.exists():
        return target
    source = Path(downloaded_module(module)["Dir"])
    target.parent.mkdir(parents=True, exist_ok=True)
    output = Path(tempfile.mkdtemp(dir=target.parent))
    command = [str(controller_gen()), "crd:crdVersions=v1", "paths=./...", f"output:crd:artifacts:config={output}"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=source, env=GO_ENV, timeout=600)
    if result.returncode != 0 or not any(output.glob("*.yaml")):
        shutil.rmtree(output)
        raise AssertionError(f"controller-gen on {module} failed: {result.stderr}")
    if target.exists():  # generated meanwhile by a parallel run
        shutil.rmtree(output)
    else:
        output.rename(target)
    return target


def flux_crd(group: str, kind: str) -> Path:
    for module in FLUX_API_MODULES:
        for crd in generated_crds(module).glob("*.yaml"):
            spec = yaml.safe_load(crd.read_text())["spec"]
            if (spec["group"], spec["names"]["kind"]) == (group, kind):
                return crd
    raise AssertionError(f"no CRD for {kind}.{group} in {FLUX_API_MODULES}")


def manifests(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((GITOPS / name).read_text()) if doc]


def install_crds(kube: Kube, *crds: Path) -> None:
    files = [arg for crd in crds for arg in ("-f", str(crd))]
    kube.kubectl("apply", "--server-side", *files)
    wait_for(lambda: kube.kubectl("wait", "--for=condition=Established", *files, "--timeout=5s",
                                  check=False).returncode == 0, 30, "the CRDs to be established")  # fmt: skip


def server_dry_run(kube: Kube, manifest: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Applied as a GitOps tool would, validated by the API server against the installed CRDs, and not stored."""
    return kube.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", manifest, stdin=stdin, check=False)


def test_the_argo_cd_application_matches_argo_cds_published_schema(kube: Kube) -> None:
    install_crds(kube, published_crd(ARGO_CD, ARGO_CRD))
    kube.kubectl("create", "namespace", "argocd", check=False)
    result = server_dry_run(kube, str(GITOPS / "argocd-application.yaml"))
    assert result.stdout.count("(server dry run)") == 2, result.stderr


def test_the_flux_helmrelease_and_its_source_match_fluxs_published_schema(kube: Kube) -> None:
    objects = manifests("flux-helmrelease.yaml")
    install_crds(kube, *{flux_crd(obj["apiVersion"].partition("/")[0], obj["kind"]) for obj in objects})
    kube.kubectl("create", "namespace", "flux-system", check=False)
    result = server_dry_run(kube, str(GITOPS / "flux-helmrelease.yaml"))
    assert result.stdout.count("(server dry run)") == len(objects) == 2, result.stderr

    # The schema is strict: a field Flux does not know (here one letter too many) is refused by name.
    release = next(obj for obj in objects if obj["kind"] == "HelmRelease")
    release["spec"]["install"]["createNamespaces"] = True
    refused = server_dry_run(kube, "-", stdin=yaml.safe_dump(release))
    assert refused.returncode != 0 and 'unknown field "spec.install.createNamespaces"' in refused.stderr, refused.stderr


def chart_release(manifest: dict[str, Any]) -> tuple[str, str, Path, dict[str, Any]]:
    """Release name, namespace, chart directory and values that Argo CD or Flux hands to Helm for a manifest."""
    spec = manifest["spec"]
    if manifest["kind"] == "HelmRelease":  # its GitRepository source is this repository
        name, namespace = spec.get("releaseName", manifest["metadata"]["name"]), spec["targetNamespace"]
        return name, namespace, REPO / spec["chart"]["spec"]["chart"], spec.get("values", {})
    helm = spec["source"]["helm"]
    name = helm.get("releaseName", manifest["metadata"]["name"])
    return name, spec["destination"]["namespace"], REPO / spec["source"]["path"], helm.get("valuesObject", {})


def helm_releases() -> list[Any]:
    """Every manifest in examples/gitops/ that hands this repository's chart to Helm, as a test parameter."""
    return [pytest.param(obj, id=f"{path.name}:{obj['metadata']['name']}")
            for path in sorted(GITOPS.glob("*.yaml")) for obj in manifests(path.name)
            if obj["kind"] == "HelmRelease" or "helm" in obj["spec"].get("source", {})]  # fmt: skip


@pytest.mark.parametrize("manifest", helm_releases())
def test_the_values_a_gitops_manifest_gives_the_chart_pass_its_values_schema(
    manifest: dict[str, Any], tmp_path: Path
) -> None:
    name, namespace, chart, values = chart_release(manifest)
    assert (chart / "values.schema.json").exists(), f"{name} points at {chart}, which is not this repository's chart"
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    helm = [str(find_tools() / "helm"), "template", name, str(chart), "-n", namespace, "--kube-version", KUBE_VERSION]
    result = subprocess.run([*helm, "-f", str(values_file)], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, f"the chart refuses the values of {manifest['kind']} {name}: {result.stderr}"
    assert "kind: Deployment" in result.stdout

"""The GitOps manifests in examples/gitops/ against the schema their tool publishes (not run: no Argo CD here).

Argo CD's Application CRD comes from its Go module (pinned below) through the Go module proxy, the
registry this machine reaches, and is installed on the test bed; a server-side dry run of our
Application then checks it against that schema. Flux's helm-controller module is refused by the proxy
here (403), so its HelmRelease is not checked this way (docs/gitops.md says so).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.kube import Kube, wait_for

ARGO_CD = "github.com/argoproj/argo-cd/v3@v3.6.1"
ARGO_CRD = "manifests/crds/application-crd.yaml"
CACHE = Path.home() / ".cache" / "modelcatalog" / "gitops"


def published_crd(module: str, member: str) -> Path:
    """A file of a Go module, from the module proxy (cached); the module need not build with our Go."""
    target = CACHE / module.replace("/", "_") / member
    if target.exists():
        return target
    if shutil.which("go") is None:
        pytest.skip("the go command is needed to fetch the published CRD from the Go module proxy")
    result = subprocess.run(["go", "mod", "download", "-json", module], capture_output=True, text=True, check=False,
                            cwd=CACHE.parent if CACHE.parent.exists() else None, timeout=600)  # fmt: skip
    archive = json.loads(result.stdout or "{}").get("Zip")  # an "requires go >= ..." error still downloads it
    if not archive or not Path(archive).exists():
        raise AssertionError(f"could not download {module}: {result.stdout}{result.stderr}")
    with zipfile.ZipFile(archive) as zipped:
        data = zipped.read(f"{module}/{member}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def test_the_argo_cd_application_matches_argo_cds_published_schema(kube: Kube) -> None:
    crd = published_crd(ARGO_CD, ARGO_CRD)
    kube.kubectl("apply", "--server-side", "-f", str(crd))
    wait_for(lambda: kube.kubectl("wait", "--for=condition=Established", "crd/applications.argoproj.io",
                                  "--timeout=5s", check=False).returncode == 0, 30, "the Application CRD")  # fmt: skip
    kube.kubectl("create", "namespace", "argocd", check=False)
    manifest = REPO / "examples" / "gitops" / "argocd-application.yaml"
    result = kube.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", str(manifest))
    assert result.stdout.count("(server dry run)") == 2, result.stdout

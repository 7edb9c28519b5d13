"""CPU of the reconcile's pure part, no cluster: `python bench/reconcile_cpu.py [COUNT]`.

For COUNT ModelDeployments: validate the spec, resolve model and instance type from the repository's
catalog (parsed once, as the operator's cache does), render the children and stamp their hashes, build the
status and its wire form. Prints the CPU seconds per 1,000 (best of 5): a yardstick for interpreters
(docs/performance.md), run under each with farm-bench.
"""

from __future__ import annotations

import sys
import time
from datetime import date

from modelcatalog.api.deployment import EndpointStatus, ModelDeploymentSpec
from modelcatalog.catalog import files
from modelcatalog.kube.sync import contains, stamped
from modelcatalog.render import deployment as render
from modelcatalog.render.deployment_status import Observed, Placement, deployment_status, resolve
from modelcatalog.render.keys import Keys
from modelcatalog.render.objects import Owner
from modelcatalog.settings import Settings

MODEL, TYPE = "meta-llama-3-8b-instruct", "standard-nc24ads-a100-v4"


def run(count: int) -> float:
    manifests = files.load_manifests()
    models = {entry.name: entry.spec for entry in files.models(manifests)}
    types = dict(files.instance_types(manifests))
    settings, keys, today = Settings(), Keys("primary-key", "secondary-key"), date(2026, 12, 1)
    started = time.process_time()
    for i in range(count):
        name = f"md-{i}"
        spec = ModelDeploymentSpec.model_validate({"model": MODEL, "instanceType": TYPE, "instanceCount": 0})
        placement = resolve(MODEL, models.get(MODEL), TYPE, types, False, today, retired_ok=True)
        assert isinstance(placement, Placement)
        inputs = render.DeploymentInputs(
            namespace="bench", owner=Owner("ModelDeployment", name, f"uid-{i}"), spec=spec, model_name=MODEL,
            model=placement.model, instance_type=placement.instance_type, settings=settings, keys=keys,
        )  # fmt: skip
        children = [stamped(m) for m in render.render(inputs)]
        assert all(contains(child, child) for child in children)  # the up-to-date check a resync makes
        endpoint = EndpointStatus(name=name, url="http://router.bench", service=name, network_access="Enabled")
        status = deployment_status(None, None, Observed(desired_replicas=0), endpoint, render.selector_string(name))
        status.to_wire()
    return time.process_time() - started


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    best = min(run(count) for _ in range(5))
    per_thousand = best / count * 1000 * 1000
    print(f"python {sys.version.split()[0]} ({sys.executable}): {per_thousand:.0f} ms of CPU per 1,000 reconciles")


if __name__ == "__main__":
    main()

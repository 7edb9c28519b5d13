"""The router as a plain local process: endpoints, keys and backends from a YAML file.

```yaml
endpoints:
  - name: chat
    keys: {primary: k1, secondary: k2}        # key mode
    deployments:
      - name: chat-blue
        trafficPercent: 90
        authMode: key                         # or token
        model: served-model-name              # optional: what the backend serves
        contentSafety: Enabled                # optional: screen prompts and completions (router/safety)
        contentSafetyThreshold: Medium        # optional: Low, Medium (default) or High
        requestSettings: {requestTimeoutSeconds: 30, maxConcurrentRequestsPerInstance: 16}
        backends: ["127.0.0.1:8001", "127.0.0.1:8002"]
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from modelcatalog.render.keys import Keys
from modelcatalog.router.state import (
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_TIMEOUT_SECONDS,
    KEY,
    ClusterState,
    Deployment,
    Limits,
    Pod,
)


def load(path: Path, state: ClusterState | None = None) -> ClusterState:
    return apply(yaml.safe_load(path.read_text()) or {}, state)


def apply(config: dict[str, Any], state: ClusterState | None = None) -> ClusterState:
    """Replace what `state` holds with `config` (a new state when None): how a reload rotates keys."""
    state = state if state is not None else ClusterState()
    state.clear()
    for endpoint in config.get("endpoints") or []:
        name = endpoint["name"]
        keys = endpoint.get("keys")
        if keys:
            state.set_keys(name, Keys(str(keys["primary"]), str(keys["secondary"])))
        for entry in endpoint.get("deployments") or []:
            deployment = _deployment(name, entry)
            state.set_deployment(deployment)
            for index, backend in enumerate(entry.get("backends") or []):
                host, _, port = str(backend).rpartition(":")
                state.set_pod(Pod(f"{deployment.name}-{index}", deployment.name, host.strip("[]"), int(port)))
    state.synced = True
    return state


def _deployment(endpoint: str, entry: dict[str, Any]) -> Deployment:
    settings = entry.get("requestSettings") or {}
    return Deployment(
        name=entry["name"],
        endpoint=endpoint,
        weight=int(entry.get("trafficPercent", 100)),
        auth_mode=entry.get("authMode", KEY),
        limits=Limits(
            float(settings.get("requestTimeoutSeconds", DEFAULT_TIMEOUT_SECONDS)),
            int(settings.get("maxConcurrentRequestsPerInstance", DEFAULT_MAX_CONCURRENT)),
        ),
        served_model=entry.get("model"),
        content_safety=entry.get("contentSafety") == "Enabled",
        safety_threshold=entry.get("contentSafetyThreshold"),
    )

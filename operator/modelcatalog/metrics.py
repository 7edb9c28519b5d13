"""Prometheus metrics of the operator."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RECONCILES = Counter("modelcatalog_reconciles_total", "Reconciles by kind and result.", ["kind", "result"])
RECONCILE_SECONDS = Histogram("modelcatalog_reconcile_seconds", "Time of one reconcile.", ["kind"])
CHILD_WRITES = Counter("modelcatalog_child_writes_total", "Children applied or deleted.", ["kind", "action"])
API_WRITES = Counter("modelcatalog_api_writes_total", "Requests that change the cluster.", ["verb"])
RETRIES = Counter(
    "modelcatalog_retries_total", "Reconciles retried after a failure, by kind and reason.", ["kind", "reason"]
)

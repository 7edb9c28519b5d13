"""The operator core: keys, the apply-skip check, the work queue."""

from __future__ import annotations

import asyncio
import base64

import pytest

from modelcatalog.kube.sync import contains, foreign_fields, removal_patch, stamped, up_to_date
from modelcatalog.render.keys import Keys


def test_generated_keys_are_long_random_and_distinct() -> None:
    keys = Keys.generate()
    assert len(keys.primary) >= 40 and len(keys.secondary) >= 40
    assert keys.primary != keys.secondary
    assert Keys.generate().primary != keys.primary


def test_keys_never_show_in_repr() -> None:
    keys = Keys("primary-secret-value", "secondary-secret-value")
    assert "secret-value" not in repr(keys)


def test_rotation_replaces_one_key_and_keeps_the_other() -> None:
    keys = Keys("p", "s")
    rotated = keys.rotated("secondary")
    assert rotated.primary == "p" and rotated.secondary != "s"
    with pytest.raises(ValueError, match="key slot must be one of primary, secondary"):
        keys.rotated("tertiary")


def test_keys_are_read_back_from_their_secret_and_both_match() -> None:
    data = {
        slot: base64.b64encode(value.encode()).decode() for slot, value in {"primary": "a", "secondary": "b"}.items()
    }
    keys = Keys.from_secret({"data": data})
    assert keys is not None
    assert keys.matches("a") and keys.matches("b") and not keys.matches("c")
    assert Keys.from_secret({"data": {"primary": data["primary"]}}) is None
    assert Keys.from_secret(None) is None


def test_contains_ignores_server_defaults_but_not_changed_values() -> None:
    live = {"spec": {"replicas": 2, "progressDeadlineSeconds": 600, "template": {"spec": {"containers": [
        {"name": "a", "image": "x", "terminationMessagePath": "/dev/termination-log"}]}}}}  # fmt: skip
    assert contains(
        live, {"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}
    )
    assert not contains(live, {"spec": {"replicas": 3}})
    assert not contains(live, {"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}}})
    assert not contains(live, {"metadata": {"labels": {"a": "b"}}})


async def test_queue_coalesces_requests_and_reruns_when_asked_during_a_run() -> None:
    from modelcatalog.controllers.queue import WorkQueue

    runs: list[str] = []
    gate = asyncio.Event()

    async def work(key: object) -> None:
        runs.append(str(key))
        await gate.wait()

    queue = WorkQueue("test", work)
    queue.request("a")
    queue.request("a")  # coalesced with the queued one
    await asyncio.sleep(0)
    queue.request("a")  # arrives during the run: one more run afterwards
    queue.request("a")
    gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert runs == ["a", "a"]
    assert queue.idle


async def test_queue_retries_failures_with_backoff() -> None:
    from modelcatalog.controllers.queue import WorkQueue

    attempts = 0

    async def flaky(key: object) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise RuntimeError("API server unavailable")

    queue = WorkQueue("test", flaky, first_backoff=0.01)
    queue.request("a")
    for _ in range(100):
        await asyncio.sleep(0.01)
        if attempts >= 3 and queue.idle:
            break
    assert attempts == 3


def test_a_field_we_stopped_setting_makes_the_child_out_of_date() -> None:
    before = stamped(
        {
            "apiVersion": "v1",
            "kind": "X",
            "metadata": {"name": "a"},
            "spec": {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [80]}]},
        }
    )
    after = stamped(
        {"apiVersion": "v1", "kind": "X", "metadata": {"name": "a"}, "spec": {"ingress": [{"ports": [80]}]}}
    )
    assert contains(before, {**after, "metadata": {"name": "a"}}), "a plain subset check cannot see the removal"
    assert not up_to_date(before, after)
    assert up_to_date(before, stamped({**before, "metadata": {"name": "a"}}))


def test_secret_data_stays_out_of_the_hash() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k"}, "data": {"primary": "c2VjcmV0"}}
    other = {**secret, "data": {"primary": "b3RoZXI="}}
    assert stamped(secret)["metadata"]["annotations"] == stamped(other)["metadata"]["annotations"]


def test_fields_others_added_to_the_spec_are_found_and_removed() -> None:
    live = {"metadata": {"managedFields": [
        {"manager": "modelcatalog", "operation": "Apply",
         "fieldsV1": {"f:spec": {"f:selector": {"f:modelcatalog.io/deployment": {}}}}},
        {"manager": "kubectl-patch", "operation": "Update",
         "fieldsV1": {"f:spec": {"f:selector": {".": {}, "f:app": {}, "f:modelcatalog.io/deployment": {}}}}},
        {"manager": "kubectl-rollout", "operation": "Update",
         "fieldsV1": {"f:spec": {"f:template": {"f:metadata": {"f:annotations": {"f:restartedAt": {}}}}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
         "fieldsV1": {"f:status": {"f:replicas": {}}}},
    ]}}  # fmt: skip
    assert foreign_fields(live) == [["spec", "selector", "app"], ["spec", "selector", "modelcatalog.io/deployment"]]
    assert removal_patch([["spec", "selector", "app"]]) == {"spec": {"selector": {"app": None}}}


def test_backoff_is_capped_jittered_and_never_overflows() -> None:
    from modelcatalog.controllers.queue import backoff

    delays = [backoff(failures, 1.0, 300.0) for failures in (1, 2, 3, 10, 1_000, 10_000_000)]
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and 2.0 <= delays[2] <= 4.0
    assert all(150.0 <= d <= 300.0 for d in delays[3:])


async def test_an_object_that_always_fails_has_one_pending_retry_however_often_it_is_requested() -> None:
    from modelcatalog.controllers.queue import WorkQueue

    attempts = 0

    async def broken(key: object) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("always")

    queue = WorkQueue("test", broken, first_backoff=60.0)
    for _ in range(50):  # events keep arriving for the object (its children, its pods)
        queue.request("a")
        for _ in range(3):
            await asyncio.sleep(0)
    assert queue.pending_retries() == 1
    assert attempts <= 50  # each request ran at most once; no retry chain multiplied them
    await queue.close()
    assert queue.pending_retries() == 0


def test_quantities_the_api_server_rewrites_are_not_drift() -> None:
    desired = {"spec": {"template": {"spec": {
        "containers": [{"resources": {"limits": {"memory": "1024Mi", "cpu": "2000m"}}}],
        "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "3072Mi"}}]}}}}  # fmt: skip
    live = {"spec": {"template": {"spec": {
        "containers": [{"resources": {"limits": {"memory": "1Gi", "cpu": "2"}}}],
        "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "3Gi"}}]}}}}  # fmt: skip
    assert contains(live, desired)
    edited = {"spec": {"template": {"spec": {**live["spec"]["template"]["spec"],
        "containers": [{"resources": {"limits": {"memory": "2Gi", "cpu": "2"}}}]}}}}  # fmt: skip
    assert not contains(edited, desired)
    assert not contains({"env": [{"value": "1.10"}]}, {"env": [{"value": "1.1"}]}), "only quantity fields"

"""The admission webhook's verdicts (pure): the reconcile's own, plus lifecycle, weights and serverless terms."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from modelcatalog.api.catalog import CatalogModelSpec
from modelcatalog.settings import Settings
from modelcatalog.webhook import certs
from modelcatalog.webhook.review import CREATE, UPDATE, Catalog, response, review_deployment, review_serverless
from tests.unit.builders import instance_type, model_spec

TODAY = date(2026, 6, 1)
# A cluster in one of the test offers' regions, with a provider for models without open weights.
EASTUS = Settings(region="eastus", serverless_upstream_url="https://provider.test")
LLAMA = "meta-llama-3-8b-instruct"
TYPES = {"big": instance_type(memory_gib=80), "small": instance_type(memory_gib=16), "cpu": instance_type(gpu=None)}


def catalog(**models: CatalogModelSpec) -> Catalog:
    found = {LLAMA: model_spec()} | {k.replace("_", "-"): v for k, v in models.items()}
    return Catalog(found.get, TYPES, TODAY)


def deployment(name: str = "chat", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "team-a"}, "spec": {"model": LLAMA, "instanceType": "big"} | spec}


def with_lifecycle(**lifecycle: Any) -> CatalogModelSpec:
    return model_spec(lifecycle=lifecycle)


def test_a_fitting_deployment_is_admitted_without_warnings() -> None:
    verdict = review_deployment(CREATE, deployment(), None, catalog(), {})
    assert verdict.allowed and not verdict.warnings


def test_an_unknown_model_names_the_field_and_how_to_list_models() -> None:
    verdict = review_deployment(CREATE, deployment(model="nope"), None, catalog(), {})
    assert not verdict.allowed and verdict.reason == "UnknownModel"
    assert verdict.message.startswith("spec.model: CatalogModel nope does not exist")
    assert "kubectl get catalogmodels" in verdict.message


def test_an_instance_type_too_small_names_the_types_that_fit() -> None:
    verdict = review_deployment(CREATE, deployment(instanceType="small"), None, catalog(), {})
    assert verdict.reason == "InsufficientGPUMemory"
    assert verdict.message.startswith("spec.instanceType: InstanceType small has 16 GiB")
    assert verdict.message.endswith("instance types that fit: big")


def test_an_unknown_instance_type_names_the_types_that_fit() -> None:
    verdict = review_deployment(CREATE, deployment(instanceType="huge"), None, catalog(), {})
    assert verdict.reason == "UnknownInstanceType"
    assert "fitting types: big" in verdict.message


def test_a_model_not_offered_on_managed_compute_is_refused() -> None:
    serverless_only = model_spec(deploymentOptions={"serverless": {"regions": ["eastus"]}})
    verdict = review_deployment(CREATE, deployment(), None, catalog(meta_llama_3_8b_instruct=serverless_only), {})
    assert verdict.reason == "NotOfferedForManagedCompute" and "ServerlessEndpoint" in verdict.message


def test_a_model_retired_by_its_date_is_refused_naming_the_date_and_successor() -> None:
    retired = with_lifecycle(stage="Deprecated", deprecationDate="2026-01-01", retirementDate="2026-05-01",
                             replacement="llama-4")  # fmt: skip
    verdict = review_deployment(CREATE, deployment(), None, catalog(meta_llama_3_8b_instruct=retired), {})
    assert verdict.reason == "ModelRetired"
    assert "retired on 2026-05-01; move to llama-4" in verdict.message


def test_a_deprecated_model_refuses_new_deployments_but_updates_pass_with_a_warning() -> None:
    deprecated = with_lifecycle(deprecationDate="2026-05-01", retirementDate="2026-09-01", replacement="llama-4")
    cat = catalog(meta_llama_3_8b_instruct=deprecated)
    created = review_deployment(CREATE, deployment(), None, cat, {})
    assert not created.allowed and created.reason == "ModelDeprecated"
    assert "use llama-4 instead" in created.message and "retires in 92 days (2026-09-01)" in created.message
    updated = review_deployment(UPDATE, deployment(instanceCount=2), deployment(), cat, {})
    assert updated.allowed and "deprecated" in updated.warnings[0] and "llama-4" in updated.warnings[0]


def test_a_legacy_model_is_admitted_with_a_warning() -> None:
    legacy = with_lifecycle(stage="Legacy", replacement="llama-4")
    verdict = review_deployment(CREATE, deployment(), None, catalog(meta_llama_3_8b_instruct=legacy), {})
    assert verdict.allowed and verdict.warnings == ("CatalogModel meta-llama-3-8b-instruct is legacy; replaced by"
                                                    " llama-4; use llama-4 instead",)  # fmt: skip


def test_a_metadata_only_update_is_never_refused() -> None:
    old = deployment(model="gone")
    new = old | {"metadata": {"name": "chat", "namespace": "team-a", "labels": {"a": "b"}}}
    assert review_deployment(UPDATE, new, old, catalog(), {}).allowed


def test_weights_over_100_are_refused_naming_the_room_left() -> None:
    verdict = review_deployment(CREATE, deployment("green", trafficPercent=30), None, catalog(), {"blue": 90})
    assert verdict.reason == "TrafficOver100"
    assert "endpoint green would take 120%" in verdict.message and "at most 10" in verdict.message
    shared = deployment("green", trafficPercent=10, endpointName="chat")
    assert review_deployment(CREATE, shared, None, catalog(), {"blue": 90}).allowed
    # its own old weight does not count twice
    assert review_deployment(UPDATE, deployment("blue", trafficPercent=100), deployment("blue"), catalog(),
                             {"blue": 90}).allowed  # fmt: skip


def serverless(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "s", "namespace": "team-a"}, "spec": {"model": "mistral"} | spec}


def offer(**serverless_option: Any) -> CatalogModelSpec:
    return model_spec(deploymentOptions={"serverless": {"regions": ["eastus", "westus"]} | serverless_option})


def test_serverless_needs_accepted_terms_and_the_clusters_region() -> None:
    eastus = Catalog({"mistral": offer()}.get, TYPES, TODAY, settings=EASTUS)
    assert review_serverless(CREATE, serverless(), None, eastus).message == (
        "spec.acceptTerms: CatalogModel mistral is a third-party model (Meta): set spec.acceptTerms: true to accept"
        " the publisher's terms and prices"
    )
    assert review_serverless(CREATE, serverless(acceptTerms=True), None, eastus).allowed
    elsewhere = Catalog({"mistral": offer()}.get, TYPES, TODAY, settings=replace(EASTUS, region="northpole"))
    refused = review_serverless(CREATE, serverless(acceptTerms=True), None, elsewhere)
    assert refused.reason == "RegionNotOffered" and "eastus, westus" in refused.message


def test_serverless_refuses_a_model_without_the_offer_or_with_a_retired_offer() -> None:
    assert review_serverless(CREATE, serverless(model=LLAMA), None, catalog()).reason == "NotOfferedServerless"
    assert review_serverless(CREATE, serverless(model="nope"), None, catalog()).reason == "ModelNotFound"
    ended = offer(lifecycle={"stage": "Retired", "retirementDate": "2026-02-01"})
    verdict = review_serverless(CREATE, serverless(acceptTerms=True), None, catalog(mistral=ended))
    assert verdict.reason == "OfferRetired" and "2026-02-01" in verdict.message


def test_serverless_admits_no_new_endpoint_on_a_deprecated_offer_and_warns_on_existing_ones() -> None:
    deprecated = offer(lifecycle={"stage": "Deprecated", "retirementDate": "2027-02-01"})
    cat = Catalog({"mistral": deprecated}.get, TYPES, TODAY, settings=EASTUS)
    created = review_serverless(CREATE, serverless(acceptTerms=True), None, cat)
    assert created.reason == "ModelDeprecated" and "no new endpoints" in created.message
    before = serverless(acceptTerms=False)
    updated = review_serverless(UPDATE, serverless(acceptTerms=True), before, cat)
    assert updated.allowed and "deprecated" in updated.warnings[0]


def test_the_admission_review_answer_carries_status_and_warnings() -> None:
    verdict = review_deployment(CREATE, deployment(model="nope"), None, catalog(), {})
    answer = response("u-1", verdict)["response"]
    assert answer["uid"] == "u-1" and answer["allowed"] is False and answer["status"]["code"] == 403
    legacy = review_deployment(CREATE, deployment(), None, catalog(meta_llama_3_8b_instruct=with_lifecycle(
        stage="Legacy")), {})  # fmt: skip
    assert response("u-2", legacy)["response"]["warnings"] == list(legacy.warnings)


def test_the_serving_certificate_is_reused_while_it_covers_the_hosts_and_is_not_expiring() -> None:
    cert = certs.generate(["svc.ns.svc", "127.0.0.1"])
    assert certs.usable(cert, ["svc.ns.svc", "127.0.0.1"])
    assert not certs.usable(cert, ["other.ns.svc"])
    assert not certs.usable(cert, ["svc.ns.svc"], now=datetime.now().astimezone() + timedelta(days=3640))
    assert certs.ServingCert.from_secret_data(cert.secret_data()) == cert


def test_a_model_the_platform_offers_on_its_pool_is_judged_as_the_reconcile_judges_it() -> None:
    retired = {"lifecycle": {"stage": "Retired", "retirementDate": "2025-08-30"}}
    ended = model_spec(deploymentOptions={"managedCompute": {"runtime": "vllm"}, "serverless": retired})
    pool = Settings(serverless_pool_models=("mistral",))
    cat = Catalog({LLAMA: model_spec(), "mistral": ended}.get, TYPES, TODAY, settings=pool)
    verdict = review_serverless(CREATE, serverless(acceptTerms=True), None, cat)
    assert verdict.allowed, "the platform's pool replaces the retired offer"
    without_pool = Catalog({LLAMA: model_spec(), "mistral": ended}.get, TYPES, TODAY, settings=Settings())
    assert review_serverless(CREATE, serverless(acceptTerms=True), None, without_pool).reason == "OfferRetired"

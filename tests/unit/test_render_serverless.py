"""ServerlessEndpoint: which offer an endpoint gets (or why not), the pool's objects, and the reference count."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from modelcatalog import labels
from modelcatalog.api.catalog import CatalogModelSpec
from modelcatalog.api.serverless import BackendKind, ServerlessEndpointSpec
from modelcatalog.render import serverless as render
from modelcatalog.settings import Settings
from tests.unit.builders import instance_type, model_spec

TODAY = date(2026, 12, 1)


def offered(**serverless: Any) -> CatalogModelSpec:
    options = {"managedCompute": {"runtime": "vllm", "minGpuMemoryGiB": 18}, "serverless": serverless}
    return model_spec(deploymentOptions=options)


def endpoint(**spec: Any) -> ServerlessEndpointSpec:
    return ServerlessEndpointSpec.model_validate({"model": "m"} | spec)


def resolve(model: CatalogModelSpec | None, spec: ServerlessEndpointSpec | None = None, **settings: Any) -> Any:
    return render.resolve("m", model, spec or endpoint(acceptTerms=True), Settings(**settings), TODAY)


def test_an_open_weight_model_offered_here_is_served_from_the_pool_with_the_catalogs_prices_and_limits() -> None:
    model = offered(
        regions=["local"],
        pricing={"inputPer1MTokens": "0.30", "outputPer1MTokens": "0.61"},
        defaultRateLimits={"requestsPerMinute": 200},
    )
    offer = resolve(model)
    assert isinstance(offer, render.Offer)
    assert (offer.backend, offer.third_party) == (BackendKind.POOL, True)
    assert offer.pricing is not None and offer.pricing.to_wire() == {
        "currency": "USD", "inputPer1MTokens": "0.30", "outputPer1MTokens": "0.61"
    }  # fmt: skip
    # The model's default sets requests; tokens fall back to the platform's.
    assert offer.limits.to_wire() == {"requestsPerMinute": 200, "tokensPerMinute": 100_000, "source": "model"}


def test_the_endpoints_own_limits_win_and_no_limits_anywhere_means_the_platforms() -> None:
    own = resolve(offered(), endpoint(acceptTerms=True, rateLimits={"tokensPerMinute": 5}))
    assert own.limits.to_wire() == {"requestsPerMinute": 60, "tokensPerMinute": 5, "source": "endpoint"}
    assert resolve(offered()).limits.source == "platform"
    assert resolve(offered()).pricing is None  # the status then says "not set"


@pytest.mark.parametrize(
    ("model", "spec", "settings", "reason", "fix"),
    [
        (None, {}, {}, "ModelNotFound", "name a model of the catalog"),
        (model_spec(), {}, {}, "NotOfferedServerless", "MODELCATALOG_SERVERLESS_POOL_MODELS"),
        (offered(regions=["eastus", "westus"]), {}, {}, "RegionNotOffered", "region local"),
        (offered(), {"acceptTerms": False}, {}, "TermsNotAccepted", "spec.acceptTerms: true"),
        (offered(lifecycle={"stage": "Retired", "retirementDate": "2025-06-30", "replacement": "n"}), {}, {},
         "OfferRetired", "move to n"),
        (model_spec(lifecycle={"stage": "Retired", "retirementDate": "2025-06-30"},
                    deploymentOptions={"managedCompute": {}, "serverless": {}}), {}, {}, "ModelRetired", "delete"),
        (model_spec(weights=None, deploymentOptions={"serverless": {}}), {}, {}, "NoUpstream",
         "MODELCATALOG_SERVERLESS_UPSTREAM_URL"),
    ],
    ids=["missing", "not-offered", "region", "terms", "offer-retired", "model-retired", "no-upstream"],
)  # fmt: skip
def test_each_refusal_names_its_fix(
    model: CatalogModelSpec | None, spec: dict[str, Any], settings: dict[str, Any], reason: str, fix: str
) -> None:
    refusal = resolve(model, endpoint(**({"acceptTerms": True} | spec)), **settings)
    assert isinstance(refusal, render.Refusal)
    assert refusal.reason == reason and fix in refusal.message


def test_a_retirement_date_that_has_passed_retires_the_offer_today() -> None:
    model = offered(lifecycle={"stage": "Deprecated", "deprecationDate": "2026-01-01", "retirementDate": "2026-11-30"})
    assert resolve(model).reason == "OfferRetired"
    assert isinstance(
        render.resolve("m", model, endpoint(acceptTerms=True), Settings(), date(2026, 11, 29)), render.Offer
    )


def test_the_users_of_an_offer_are_warned_by_the_offers_dates_and_of_a_platform_pool_by_the_models() -> None:
    retiring = {"stage": "GenerallyAvailable", "retirementDate": "2026-12-21", "replacement": "m2"}
    offer = resolve(offered(lifecycle=retiring))
    subject, replacement, notice = render.offer_notice(offer, Settings(), TODAY)
    assert notice is not None and notice.reason == "RetirementWithin30Days" and replacement == "m2"
    assert notice.message(subject, TODAY, replacement) == (
        "the serverless offer of CatalogModel m retires in 20 days (2026-12-21); move to m2"
    )
    pool = Settings(serverless_pool_models=("m",))
    on_pool = render.resolve("m", offered(lifecycle=retiring), endpoint(acceptTerms=True), pool, TODAY)
    assert render.offer_notice(on_pool, pool, TODAY) == ("CatalogModel m", None, None)  # the model itself is GA


def test_no_regions_listed_is_no_restriction_and_a_listed_region_is_accepted() -> None:
    assert isinstance(resolve(offered()), render.Offer)
    assert isinstance(resolve(offered(regions=["eastus"]), region="eastus"), render.Offer)


def test_the_platform_override_offers_an_open_weight_model_without_a_serverless_offer_and_ignores_the_clouds() -> None:
    plain = model_spec()  # managed compute only, publisher Meta
    offer = resolve(plain, serverless_pool_models=("m",))
    assert isinstance(offer, render.Offer) and offer.backend == BackendKind.POOL
    retired_elsewhere = offered(regions=["eastus"], lifecycle={"stage": "Retired", "retirementDate": "2025-01-01"})
    assert isinstance(resolve(retired_elsewhere, serverless_pool_models=("m",)), render.Offer)
    # A third party's model still needs the terms; the platform's own publisher's does not.
    assert resolve(plain, endpoint(), serverless_pool_models=("m",)).reason == "TermsNotAccepted"
    own = model_spec(publisher="Microsoft")
    assert isinstance(resolve(own, endpoint(), serverless_pool_models=("m",)), render.Offer)
    assert resolve(
        model_spec(weights=None, deploymentOptions={"serverless": {}}), serverless_pool_models=("m",)
    ).reason == ("NoOpenWeights")


def test_a_model_without_open_weights_goes_upstream_when_the_platform_has_one() -> None:
    api_only = model_spec(weights=None, deploymentOptions={"serverless": {"termsRequired": False}})
    offer = resolve(api_only, endpoint(), serverless_upstream_url="https://127.0.0.1:9/v1")
    assert isinstance(offer, render.Offer) and offer.backend == BackendKind.UPSTREAM
    settings = Settings(serverless_upstream_url="https://127.0.0.1:9", serverless_upstream_secret="provider")
    backend = render.upstream_backend("m", settings, "127.3.0.4:80")
    assert backend.to_wire()["url"] == "https://127.0.0.1:9" and backend.gateway == "127.3.0.4:80"
    assert backend.credential_secret == "provider"  # the Secret's name; its value only the gateway reads
    waiting = render.offer_status("chat", offer, "http://r/v1", backend, None, gateway_ready=0)
    assert (waiting.phase, waiting.conditions[1].reason) == ("Pending", "GatewayStarting")
    served = render.offer_status("chat", offer, "http://r/v1", backend, None, gateway_ready=2)
    assert (served.phase, served.conditions[1].reason) == ("Ready", "UpstreamReady")


def test_the_pool_runs_the_model_server_on_the_smallest_fitting_type_labelled_as_a_pool() -> None:
    types = {"big": instance_type(8, 80), "small": instance_type(1, 24), "tiny": instance_type(1, 16)}
    assert render.pool_instance_type("m", model_spec(), types) == "small"  # needs 18 GiB
    settings = Settings()
    deployment, service = render.render_pool("m", model_spec(), "small", types["small"], settings)
    assert deployment["metadata"]["namespace"] == service["metadata"]["namespace"] == "modelcatalog-serverless"
    assert deployment["metadata"]["name"] == service["metadata"]["name"] == "pool-m"
    assert "ownerReferences" not in deployment["metadata"]
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"][labels.COMPONENT] == labels.MODEL_POOL
    assert labels.DEPLOYMENT not in pod["metadata"]["labels"]  # not a workspace's model server
    container = pod["spec"]["containers"][0]
    assert container["args"][container["args"].index("--served-model-name") + 1] == "m"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert render.pool_name("x" * 80).startswith("pool-x") and len(render.pool_name("x" * 80)) <= 63


def test_the_pools_admit_only_the_gateway_of_their_own_namespace() -> None:
    policy = render.pool_network_policy(Settings())
    assert policy["spec"]["podSelector"] == {"matchLabels": {labels.COMPONENT: labels.MODEL_POOL}}
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    assert peer == {"podSelector": {"matchLabels": {labels.COMPONENT: labels.SERVERLESS_GATEWAY,
                                                    labels.MANAGED_BY: labels.MANAGER}}}  # fmt: skip
    assert rule["ports"] == [{"port": 8000, "protocol": "TCP"}]


def body(name: str, namespace: str = "a", deleting: bool = False, finalizer: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    if finalizer:
        meta["finalizers"] = [render.FINALIZER]
    return {"metadata": meta, "spec": {"model": "m"}}


def test_the_pool_counts_live_endpoints_of_every_workspace_and_never_a_deleting_one() -> None:
    bodies = [body("x", "a"), body("y", "b"), body("z", "a", deleting=True)]
    assert render.pool_users(bodies, lambda b: True) == ["a/x", "b/y"]
    assert render.pool_users(bodies, lambda b: b["metadata"]["name"] != "x") == ["b/y"]  # refused: not counted
    assert [b["metadata"]["name"] for b in render.releasable(bodies)] == ["z"]
    # The last one going: nobody counts, so the pool is not desired; its finalizer may go after the sync.
    last = [body("z", "a", deleting=True)]
    assert render.pool_users(last, lambda b: True) == []
    assert render.releasable([body("w", deleting=True, finalizer=False)]) == []


def test_the_keys_secret_is_labelled_as_an_endpoints_and_owned_by_the_serverless_endpoint() -> None:
    from modelcatalog.render.keys import Keys
    from modelcatalog.render.objects import Owner

    secret = render.keys_secret("a", Owner("ServerlessEndpoint", "chat", "uid-1"), Keys("p", "s"))
    assert secret["metadata"]["name"] == "chat-keys"
    assert secret["metadata"]["labels"][labels.OWNER_KIND] == "Endpoint"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_status_reports_url_keys_prices_limits_and_the_pools_readiness() -> None:
    offer = resolve(offered())
    backend = render.pool_backend("m", Settings(), {"spec": {"clusterIP": "127.2.0.9"}}, "127.3.0.4:80")
    assert (backend.address, backend.gateway) == ("127.2.0.9:80", "127.3.0.4:80")
    starting = render.offer_status("chat", offer, "http://r/v1", backend, 0, gateway_ready=1)
    assert (starting.phase, starting.conditions[1].reason) == ("Pending", "PoolStarting")
    no_gateway = render.offer_status("chat", offer, "http://r/v1", backend, 1, gateway_ready=0)
    assert (no_gateway.phase, no_gateway.conditions[1].reason) == ("Pending", "GatewayStarting")
    ready = render.offer_status("chat", offer, "http://r/v1", backend, 1, gateway_ready=2).to_wire()
    assert ready["phase"] == "Ready" and ready["keysSecret"] == "chat-keys" and ready["url"] == "http://r/v1"
    assert ready["pricing"] == {"inputPer1MTokens": "not set", "outputPer1MTokens": "not set"}
    assert ready["rateLimits"]["source"] == "platform"
    refused = render.refused_status(render.Refusal("TermsNotAccepted", "set spec.acceptTerms: true")).to_wire()
    assert refused["phase"] == "Failed" and {c["reason"] for c in refused["conditions"]} == {"TermsNotAccepted"}

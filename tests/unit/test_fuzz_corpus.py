"""The fuzzed corpus of bench/faults.py (tests/integration/test_faults.py) is what it claims to be."""

from __future__ import annotations

import json

import pytest
from bench.faults import corpus
from pydantic import BaseModel, ValidationError

from modelcatalog.api.deployment import ModelDeploymentSpec
from modelcatalog.api.network import WorkspaceNetworkSpec


@pytest.mark.parametrize("model", [ModelDeploymentSpec, WorkspaceNetworkSpec])
def test_valid_documents_pass_the_model_and_the_others_fail_it(model: type[BaseModel]) -> None:
    """Strict JSON validation, as the API server types fields: in lax mode pydantic takes "3" for an integer."""
    documents = corpus(model, 100)
    assert len(documents) == 100
    wrong = []
    for made, document in documents:
        try:
            model.model_validate_json(json.dumps(document), strict=True)
            passes = True
        except ValidationError:
            passes = False
        if passes != (made == "valid"):
            wrong.append((made, document))
    assert not wrong
    assert {made.split(":")[0] for made, _ in documents} >= {"valid", "invalid", "unknown-field"}


def test_the_same_seed_gives_the_same_corpus() -> None:
    assert corpus(ModelDeploymentSpec, 30) == corpus(ModelDeploymentSpec, 30)
    assert corpus(ModelDeploymentSpec, 30) != corpus(ModelDeploymentSpec, 30, fixed_seed=21)

"""The OpenAPI documents validate against the official OpenAPI 3.1 schema.

`openapi-spec-validator` ships the schema of the OpenAPI Initiative and checks what it cannot
express (unique operation ids, declared path parameters, resolvable references). The documents
are read from the running server (both listeners and `/v1/openapi.json`) and from the checked-in
`docs/openapi-v1.json`.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator

from conftest import REPO_ROOT


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as resp:
        assert resp.status == 200
        return json.load(resp)


def _documents(server) -> dict[str, dict]:
    return {
        "public": _get(f"{server.public_url}/.well-known/openapi.json"),
        "admin": _get(f"{server.admin_url}/.well-known/openapi.json"),
        "v1": _get(f"{server.public_url}/v1/openapi.json"),
    }


def test_served_documents_are_valid_openapi_3_1(server):
    for name, doc in _documents(server).items():
        assert doc["openapi"] == "3.1.0", name
        validate(doc, cls=OpenAPIV31SpecValidator)
        assert len(doc["paths"]) > 5, name


def test_checked_in_v1_document_is_valid_and_matches_the_server(server):
    checked_in = json.loads((REPO_ROOT / "docs" / "openapi-v1.json").read_text())
    validate(checked_in, cls=OpenAPIV31SpecValidator)
    served = _get(f"{server.public_url}/v1/openapi.json")
    served.pop("servers")
    assert served == checked_in


@pytest.mark.parametrize("breakage", ["no_title", "duplicate_operation_id"])
def test_validator_rejects_a_broken_document(server, breakage):
    doc = _get(f"{server.public_url}/v1/openapi.json")
    validate(doc, cls=OpenAPIV31SpecValidator)
    if breakage == "no_title":
        del doc["info"]["title"]
    else:
        for item in doc["paths"].values():
            for op in item.values():
                op["operationId"] = "same"
    with pytest.raises(OpenAPIValidationError):
        validate(doc, cls=OpenAPIV31SpecValidator)

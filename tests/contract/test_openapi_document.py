"""docs/openapi.json is the gateway's document, fresh, and every operation in it documents its errors."""

import importlib.util
import json
from pathlib import Path

import jsonschema
import pytest

from shared.openapi import merge_documents

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "openapi.json"


def _generator():
    spec = importlib.util.spec_from_file_location("hearth_openapi_script", ROOT / "deploy" / "openapi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def document() -> dict:
    return _generator().gateway_document()


def operations(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_docs_openapi_json_is_fresh(document):
    committed = json.loads(DOCUMENT.read_text())
    changed = sorted(p for p in committed["paths"].keys() | document["paths"].keys()
                     if committed["paths"].get(p) != document["paths"].get(p))
    assert committed == document, f"docs/openapi.json is stale (paths: {changed}): run `make openapi` and commit it"


def test_gateway_document_has_every_public_path_of_every_service_and_one_server(document):
    assert [s["url"] for s in document["servers"]] == ["http://localhost:8000"]
    paths = set(document["paths"])
    for expected in ("/auth/login", "/api/v1/people", "/api/v1/posts", "/scim/v2/Users",
                     "/api/v1/notifications", "/api/v1/analytics/overview"):
        assert expected in paths
    assert "/healthz" not in paths and "/readyz" not in paths  # per service, not behind the gateway


def test_every_operation_has_a_unique_id_a_tag_and_an_example(document):
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for path, method, op in operations(document):
        assert op.get("tags"), f"{method.upper()} {path} has no tag"
        media = [m for r in op["responses"].values() for m in r.get("content", {}).values()]
        media += list(op.get("requestBody", {}).get("content", {}).values())
        assert any("example" in m or "examples" in m for m in media), f"{method.upper()} {path} has no example"


def test_every_example_is_valid_for_its_schema(document):
    for path, method, op in operations(document):
        bodies = [("request", op.get("requestBody", {}))] + list(op["responses"].items())
        for where, body in bodies:
            for media_type, media in body.get("content", {}).items():
                if "example" in media and "schema" in media:
                    schema = media["schema"] | {"components": document["components"]}
                    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(media["example"])]
                    assert not errors, f"{method.upper()} {path} {where} {media_type}: {errors}"


def test_every_error_is_a_documented_problem_and_scim_errors_are_scim(document):
    for path, method, op in operations(document):
        errors = {s: r for s, r in op["responses"].items() if s.startswith("4")}
        scim = path.startswith("/scim/v2")
        for status, response in errors.items():
            expected = "application/scim+json" if scim else "application/problem+json"
            ref = "#/components/schemas/ScimError" if scim else "#/components/schemas/Problem"
            assert expected in response["content"], f"{method.upper()} {path} {status}"
            assert response["content"][expected]["schema"] == {"$ref": ref}
            others = set(response["content"]) - {expected}
            # Only the rate limit, answered before any route runs, is problem+json under /scim/v2 too.
            assert not others or (scim and status == "429" and others == {"application/problem+json"}), \
                f"{method.upper()} {path} {status}: {others}"
        if op.get("security") or scim:
            assert "401" in errors, f"{method.upper()} {path} needs a token but does not document 401"
        if op.get("security") and not scim:
            assert "403" in errors, f"{method.upper()} {path}"
        assert "429" in errors, f"{method.upper()} {path}: every public route is rate limited"
        if any(p["in"] == "path" for p in op.get("parameters", [])):
            assert "404" in errors, f"{method.upper()} {path} takes an id but does not document 404"
        if not scim and (op.get("parameters") or op.get("requestBody")):
            assert "422" in errors, f"{method.upper()} {path} takes input but does not document 422"
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])
    assert problem["properties"]["errors"]["type"] == "array"
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_lists_describe_their_cursor_and_limit(document):
    lists = 0
    for path, method, op in operations(document):
        params = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
        if "cursor" in params:
            lists += 1
            assert "next_cursor" in params["cursor"]["description"], f"{path}: cursor"
            assert "limit" in params and params["limit"]["description"], f"{path}: limit"
    assert lists >= 5


def test_merge_renames_the_later_services_operation_id_when_two_services_use_one():
    doc = {"openapi": "3.1.0", "paths": {"/a": {"get": {"operationId": "same", "tags": ["a"], "responses": {}}}}}
    other = {"openapi": "3.1.0", "paths": {"/b": {"get": {"operationId": "same", "tags": ["b"], "responses": {}}}}}
    merged = merge_documents({"one": doc, "two": other}, server_url="http://x", title="t", version="1",
                             description="d")
    assert merged["paths"]["/a"]["get"]["operationId"] == "same"
    assert merged["paths"]["/b"]["get"]["operationId"] == "b_same"


def test_merge_refuses_a_path_two_services_serve():
    doc = {"openapi": "3.1.0", "paths": {"/a": {"get": {"operationId": "one", "responses": {}}}}}
    other = {"openapi": "3.1.0", "paths": {"/a": {"post": {"operationId": "two", "responses": {}}}}}
    with pytest.raises(ValueError, match="/a"):
        merge_documents({"one": doc, "two": other}, server_url="http://x", title="t", version="1",
                        description="d")


def test_merge_keeps_two_services_schemas_of_the_same_name_apart():
    def doc(path, shape):
        return {"openapi": "3.1.0",
                "paths": {path: {"get": {"operationId": path.strip("/"), "responses": {
                    "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}}}}},
                "components": {"schemas": {"Item": shape}}}

    merged = merge_documents({"posts": doc("/a", {"type": "string"}), "messaging": doc("/b", {"type": "integer"})},
                             server_url="http://x", title="t", version="1", description="d")
    schemas = merged["components"]["schemas"]
    assert schemas["Item"] == {"type": "string"} and schemas["MessagingItem"] == {"type": "integer"}
    ref = merged["paths"]["/b"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/MessagingItem"

"""What every service's OpenAPI document has in common (documented errors, operation ids, examples).

FastAPI documents what a route returns when it succeeds; the errors come from shared/errors.py's
handlers, dependencies and middleware, which FastAPI cannot see. `install_openapi` rewrites each
service's generated document once, centrally, so that every route (including ones added later)
documents the problem+json answers it can give, SCIM routes their SCIM Error, and generated clients
get short unique operation ids. `merge_documents` builds the gateway's single document from the four.
"""

import copy
import re
from collections import Counter
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from shared.errors import PROBLEM_JSON

SCIM_JSON = "application/scim+json"
SCIM_PREFIX = "/scim/v2"
WRITE_METHODS = {"post", "put", "patch", "delete"}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
SCIM_ERROR_REF = {"$ref": "#/components/schemas/ScimError"}
# Paths every service serves for operators; the gateway does not route them.
PER_SERVICE_PATHS = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

PROBLEM_SCHEMAS = {
    "Problem": {
        "title": "Problem",
        "type": "object",
        "description": "An error (RFC 9457 problem details, `application/problem+json`). `code` is stable and "
                       "meant for programs; `errors` lists the offending fields of a validation failure. "
                       "Some problems carry more members (e.g. `required_scope`).",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "description": "A URI naming the kind of problem."},
            "title": {"type": "string", "description": "A short summary of the kind of problem."},
            "status": {"type": "integer", "description": "The HTTP status code."},
            "detail": {"type": "string", "description": "What went wrong this time, for a person."},
            "code": {"type": "string", "description": "The stable machine-readable error code."},
            "instance": {"type": "string", "description": "The path of the request that failed."},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ProblemFieldError"},
                       "description": "Validation failures, one per offending field."},
        },
        "additionalProperties": True,
    },
    "ProblemFieldError": {
        "title": "ProblemFieldError",
        "type": "object",
        "required": ["loc", "msg", "type"],
        "properties": {
            "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    "description": "Where the field is: `body`, `query`, `path` or `header`, then its name."},
            "msg": {"type": "string"},
            "type": {"type": "string", "description": "The kind of validation failure, e.g. `missing`."},
        },
    },
    "ScimError": {
        "title": "ScimError",
        "type": "object",
        "description": "A SCIM error (RFC 7644 §3.12), `application/scim+json`.",
        "required": ["schemas", "status"],
        "properties": {
            "schemas": {"type": "array", "items": {"type": "string"},
                        "example": ["urn:ietf:params:scim:api:messages:2.0:Error"]},
            "status": {"type": "string", "description": "The HTTP status code as a string."},
            "scimType": {"type": "string", "description": "The RFC 7644 Table 9 keyword, e.g. `uniqueness`."},
            "detail": {"type": "string"},
        },
    },
    "JWKS": {
        "title": "JWKS",
        "type": "object",
        "description": "The public keys that verify Hearth's tokens (RFC 7517); cache and refresh on an unknown `kid`.",
        "required": ["keys"],
        "properties": {"keys": {"type": "array", "items": {"type": "object", "additionalProperties": True}}},
        "example": {"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                              "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "Kev8tVfjJGTSHTjOVWvQnGIw",
                              "use": "sig", "alg": "ES256"}]},
    },
    "Readiness": {
        "title": "Readiness",
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"type": "string", "enum": ["ready", "unavailable"]},
            "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
        },
        "example": {"status": "ready", "checks": {"database": True, "broker": True}},
    },
}

# status -> (code, title, when) for problem+json answers; `when` is the response description.
PROBLEMS = {
    400: ("malformed-json", "Malformed JSON", "The body is not valid JSON, or a value is not acceptable."),
    401: ("unauthorized", "Authentication required",
          "No bearer token, or one that is invalid, expired or revoked (see `WWW-Authenticate`)."),
    403: ("forbidden", "Forbidden", "The caller may not do this (role, scope or ownership)."),
    404: ("not-found", "Not found", "No such resource, or the caller may not see it."),
    409: ("conflict", "Conflict", "The request conflicts with the resource's current state."),
    413: ("payload-too-large", "Payload too large", "The body exceeds the size limit."),
    415: ("unsupported-media-type", "Unsupported media type", "The body's media type (or a file's) is not accepted."),
    422: ("validation-failed", "Validation failed", "A field is missing or invalid; `errors` lists them."),
    429: ("rate-limited", "Too many requests", "Too many requests; retry after `Retry-After` seconds."),
    503: ("service-unavailable", "Service unavailable",
          "A backing service (database, broker) is unreachable; retry after `Retry-After` seconds."),
}
SCIM_PROBLEMS = {400: "invalidValue", 401: None, 404: None, 409: "uniqueness", 412: None, 413: None, 429: None}
SCIM_WHEN = {400: "The request is not valid SCIM (bad syntax, value or filter).",
             401: "The SCIM bearer token is missing or wrong.", 404: "No such resource.",
             409: "A unique attribute is already in use.", 412: "`If-Match` does not match the resource's ETag.",
             413: "The body exceeds the size limit.",
             429: "Too many failed SCIM sign-ins from this address (SCIM Error), or too many requests "
                  "(problem+json, `Retry-After`)."}
RETRY_AFTER = {"description": "Seconds to wait before trying again.", "required": True,
               "schema": {"type": "string", "pattern": "^[0-9]+$"}}
HEADERS = {
    401: {"WWW-Authenticate": {"description": "Why the bearer token was refused (RFC 6750).",
                               "schema": {"type": "string"}}},
    429: {"Retry-After": RETRY_AFTER},
    503: {"Retry-After": RETRY_AFTER},
}
# Not rate limited (shared/ratelimit.py UNLIMITED_PATHS).
UNLIMITED = {"/healthz", "/readyz", "/metrics"}
# Answered from memory: no backing service to be unavailable.
NO_OUTAGE = {"/healthz", "/.well-known/jwks.json"}
SCIM_SECURITY_SCHEME = {"type": "http", "scheme": "bearer",
                        "description": "The SCIM provisioning token (HEARTH_SCIM_TOKEN) your identity provider sends."}
PARAMETER_DESCRIPTIONS = {
    "cursor": "Opaque position of the next page: the `next_cursor` of the previous answer. Omit for the first page.",
    "limit": "How many items per page (at most 100).",
}
NEXT_CURSOR = "Pass as `cursor` to get the next page; null on the last page."


def install_openapi(app: FastAPI) -> None:
    """Hook the shared OpenAPI customisation into a service app (called by create_service_app)."""
    generate = app.openapi  # FastAPI's: cached until the app's routes change
    customised: list[int] = []

    def openapi() -> dict[str, Any]:
        doc = generate()
        if not customised or customised[-1] != id(doc):
            customise(doc, routes_by_operation(app))
            customised.append(id(doc))
        return doc

    app.openapi = openapi


def routes_by_operation(app: FastAPI) -> dict[tuple[str, str], Any]:
    """(path, method) -> the route serving it, through included routers."""
    found = {}
    for route in iter_route_contexts(app.routes):
        if getattr(route, "include_in_schema", False) and getattr(route, "methods", None):
            for method in route.methods:
                found[(route.path_format, method.lower())] = route
    return found


def customise(doc: dict[str, Any], routes: dict[tuple[str, str], Any]) -> dict[str, Any]:
    """Document errors, operation ids, tags and examples on a FastAPI-generated document (in place)."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(copy.deepcopy(PROBLEM_SCHEMAS))
    if any(path.startswith(SCIM_PREFIX) for path in doc.get("paths", {})):
        doc["components"].setdefault("securitySchemes", {})["ScimBearer"] = SCIM_SECURITY_SCHEME
    ids = operation_ids(doc, routes)
    for path, method, operation in operations(doc):
        operation["operationId"] = ids[(path, method)]
        operation.setdefault("tags", [path.strip("/").split("/")[0] or "default"])
        _describe_parameters(operation)
        if path == "/readyz":
            _document_readiness(operation)
        elif path == "/.well-known/jwks.json":
            jwks = {"schema": {"$ref": "#/components/schemas/JWKS"}}
            operation["responses"]["200"]["content"] = {"application/json": jwks}
            _document_problems(path, method, operation)
        elif path.startswith(SCIM_PREFIX):
            _document_scim(path, method, operation)
        else:
            _document_problems(path, method, operation)
        _add_examples(operation, schemas)
        operation["responses"] = dict(sorted(operation.get("responses", {}).items()))
    for schema in schemas.values():
        cursor = schema.get("properties", {}).get("next_cursor")
        if cursor is not None:
            cursor.setdefault("description", NEXT_CURSOR)
    tags = sorted({tag for _, _, op in operations(doc) for tag in op.get("tags", [])})
    known = {t["name"] for t in doc.get("tags", [])}
    doc["tags"] = doc.get("tags", []) + [{"name": t} for t in tags if t not in known]
    return doc


def operations(doc: dict[str, Any]):
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}:
                yield path, method, operation


def operation_ids(doc: dict[str, Any], routes: dict[tuple[str, str], Any]) -> dict[tuple[str, str], str]:
    """The route's explicit operation_id, else its function name (SCIM's with `scim_` in front); names used
    twice in one service get their tag in front."""
    chosen: dict[tuple[str, str], tuple[str, bool]] = {}
    for path, method, operation in operations(doc):
        route = routes.get((path, method))
        if route is not None and getattr(route, "operation_id", None):
            chosen[(path, method)] = (route.operation_id, True)
        else:
            name = route.name if route is not None else operation["operationId"]
            if path.startswith(SCIM_PREFIX):  # its own protocol: scim_create_user next to create_group
                name = f"scim_{name}"
            chosen[(path, method)] = (name, False)
    counts = Counter(name for name, _ in chosen.values())
    ids = {}
    for (path, method), (name, explicit) in chosen.items():
        if counts[name] > 1 and not explicit:
            tag = (doc["paths"][path][method].get("tags") or [path.strip("/").split("/")[0]])[0]
            name = f"{tag.replace('-', '_')}_{name}"
        ids[(path, method)] = name
    duplicates = [n for n, c in Counter(ids.values()).items() if c > 1]
    if duplicates:
        raise ValueError(f"operationIds used by more than one route: {duplicates}")
    return ids


def _describe_parameters(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "query" and parameter["name"] in PARAMETER_DESCRIPTIONS:
            parameter.setdefault("description", PARAMETER_DESCRIPTIONS[parameter["name"]])


def _statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """Which problem statuses a route can answer, from what it takes and whether it needs a token."""
    params = operation.get("parameters", [])
    has_body = "requestBody" in operation
    secured = bool(operation.get("security"))
    statuses = set()
    if params or has_body:
        statuses |= {400, 422}
    if has_body:
        statuses |= {413, 415}
    if secured:
        statuses |= {401, 403}
    if path not in UNLIMITED:
        statuses |= {429}  # shared/ratelimit.py: per person or token, per address, per route
    if path.startswith("/auth/"):
        statuses |= {401, 429}  # sign-in and refresh refuse bad credentials; login is throttled
    if path.startswith("/auth/sso/"):
        statuses |= {404}  # SSO is off unless an OIDC issuer is configured
    if any(p.get("in") == "path" for p in params) or method in WRITE_METHODS:
        statuses |= {404}
    if method in WRITE_METHODS:
        statuses |= {409, 422}
    if path not in NO_OUTAGE:
        statuses |= {503}  # RequestContextMiddleware (shared/app.py) answers an outage with 503
    return statuses


def _document_problems(path: str, method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    for status in sorted(_statuses(path, method, operation)):
        code, title, when = PROBLEMS[status]
        if status == 400 and "requestBody" not in operation:
            code, title, when = "bad-request", "Bad request", "A parameter is not acceptable."
        existing = responses.get(str(status), {})
        example = {"type": f"https://hearth.dev/problems/{code}", "title": title, "status": status,
                   "detail": when, "code": code, "instance": path}
        if status == 422:
            example["errors"] = [{"loc": ["body", "field"], "msg": "Field required", "type": "missing"}]
        response = {"description": existing.get("description") if existing.get("description") not in
                    (None, "Validation Error") else when,
                    "content": {PROBLEM_JSON: {"schema": PROBLEM_REF, "example": example}}}
        if status in HEADERS:
            response["headers"] = copy.deepcopy(HEADERS[status])
        responses[str(status)] = response


def _document_scim(path: str, method: str, operation: dict[str, Any]) -> None:
    operation.setdefault("security", [{"ScimBearer": []}])
    responses = operation.setdefault("responses", {})
    for status, response in responses.items():  # success bodies are SCIM resources
        if status.startswith("2") and "content" in response:
            response["content"] = {SCIM_JSON: {"schema": {"type": "object", "description": "A SCIM resource "
                                               "or ListResponse (RFC 7643, RFC 7644)."}}}
    statuses = {401, 429}
    if operation.get("parameters") or "requestBody" in operation:
        statuses |= {400}
    if "requestBody" in operation:
        statuses |= {409, 413}
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        statuses |= {404}
        if method in WRITE_METHODS:
            statuses |= {409, 412}
    responses.pop("422", None)  # SCIM reports invalid input as 400 invalidValue / invalidSyntax
    for status in sorted(statuses):
        example = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status),
                   "detail": SCIM_WHEN[status]}
        if SCIM_PROBLEMS[status]:
            example["scimType"] = SCIM_PROBLEMS[status]
        response = {"description": SCIM_WHEN[status],
                    "content": {SCIM_JSON: {"schema": SCIM_ERROR_REF, "example": example}}}
        if status == 401:
            response["headers"] = copy.deepcopy(HEADERS[401])
        if status == 429:  # the general rate limit (middleware) answers problem+json on every path
            code, title, when = PROBLEMS[429]
            response["content"][PROBLEM_JSON] = {"schema": PROBLEM_REF, "example": {
                "type": f"https://hearth.dev/problems/{code}", "title": title, "status": 429, "detail": when,
                "code": code, "instance": path}}
            response["headers"] = copy.deepcopy(HEADERS[429])
        responses[str(status)] = response


def _document_readiness(operation: dict[str, Any]) -> None:
    ready = {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}
    operation["responses"] = {
        "200": {"description": "The database and the broker answer.", "content": copy.deepcopy(ready)},
        "503": {"description": "The database or the broker does not answer; `checks` says which.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"},
                                                 "example": {"status": "unavailable",
                                                             "checks": {"database": True, "broker": False}}}}},
    }


def _add_examples(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """An example for each documented body that has none, built from its schema."""
    bodies = [operation.get("requestBody", {})] + list(operation.get("responses", {}).values())
    for body in bodies:
        for media in body.get("content", {}).values():
            if "example" not in media and "examples" not in media and media.get("schema"):
                example = example_of(media["schema"], schemas)
                if example is not None:
                    media["example"] = example


_FORMATS = {"uuid": "0192f4c6-5a3e-7b1c-9d2e-3f4a5b6c7d8e", "date-time": "2026-11-25T09:30:00Z",
            "date": "2026-11-25", "email": "ada@example.com", "uri": "https://example.com/",
            "binary": None}


def example_of(schema: dict[str, Any], schemas: dict[str, Any], depth: int = 0) -> Any:
    """A value valid for a JSON schema (declared examples and defaults first); None if none is known."""
    if depth > 16:
        return None
    if "$ref" in schema:
        return example_of(schemas.get(schema["$ref"].rsplit("/", 1)[-1], {}), schemas, depth + 1)
    for key in ("example", "default", "const"):
        if key in schema and schema[key] is not None:
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        options = [s for s in schema.get(key, []) if s.get("type") != "null"]
        for option in options:
            value = example_of(option, schemas, depth + 1)
            if value is not None:
                return value
    if schema.get("allOf"):
        return example_of(schema["allOf"][0], schemas, depth + 1)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return _object_example(schema, schemas, depth)
    if kind == "array":
        item = example_of(schema.get("items", {}), schemas, depth + 1)
        return [] if item is None else [item] * max(schema.get("minItems", 1), 1)
    if kind == "string":
        return _string_example(schema)
    if kind == "integer":
        return int(schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    return None


def _object_example(schema: dict[str, Any], schemas: dict[str, Any], depth: int) -> dict[str, Any] | None:
    example, required = {}, set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        value = example_of(sub, schemas, depth + 1)
        if value is None and name in required:
            return None  # no valid example rather than an invalid one
        if value is not None:
            example[name] = value
    return example


_PATTERN_CANDIDATES = ("US", "en", "abc", "a", "1", "00:00", "Europe/Paris", "ada", "launch", "x-1")


def _string_example(schema: dict[str, Any]) -> str | None:
    if schema.get("format") in _FORMATS:
        return _FORMATS[schema["format"]]
    low, high = schema.get("minLength", 0), schema.get("maxLength", 10_000)
    if "pattern" in schema:
        pattern = re.compile(schema["pattern"])
        return next((c for c in _PATTERN_CANDIDATES if pattern.search(c) and low <= len(c) <= high), None)
    value = "string" if low <= 6 else "x" * low
    return value[:high] if len(value) > high else value


def merge_documents(docs: dict[str, dict[str, Any]], *, server_url: str, title: str, version: str,
                    description: str) -> dict[str, Any]:
    """One document for everything behind the gateway: every service's public paths and schemas.

    Services are merged in the order given; an operationId an earlier service already uses gets the
    later operation's tag in front (messaging's `create_group` becomes `conversations_create_group`)."""
    merged = {"openapi": next(iter(docs.values()))["openapi"],
              "info": {"title": title, "version": version, "description": description},
              "servers": [{"url": server_url, "description": "The gateway"}],
              "paths": {}, "components": {"schemas": {}, "securitySchemes": {}}, "tags": []}
    seen_ids: dict[str, str] = {}
    for service, doc in docs.items():
        renames = _schema_renames(service, doc, merged["components"]["schemas"])
        doc = _rename_refs(copy.deepcopy(doc), renames)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            if name in renames and "title" in schema:  # generators name their classes after the title
                schema["title"] = renames[name]
            merged["components"]["schemas"][renames.get(name, name)] = schema
        merged["components"]["securitySchemes"].update(doc.get("components", {}).get("securitySchemes", {}))
        for path, item in doc["paths"].items():
            if path in PER_SERVICE_PATHS:
                continue
            if path in merged["paths"]:
                raise ValueError(f"{path} is served by {service} and another service")
            for operation in item.values():
                if seen_ids.get(operation["operationId"], service) != service:
                    # The earlier service keeps the name (posts first): a later service's route never renames it.
                    tag = (operation.get("tags") or [service])[0].replace("-", "_")
                    operation["operationId"] = f"{tag}_{operation['operationId']}"
                owner = seen_ids.setdefault(operation["operationId"], service)
                if owner != service:
                    raise ValueError(f"operationId {operation['operationId']} is used by {owner} and {service}")
            merged["paths"][path] = item
        for tag in doc.get("tags", []):
            if tag["name"] not in {t["name"] for t in merged["tags"]} and tag["name"] != "health":
                merged["tags"].append(tag)
    merged["paths"] = dict(sorted(merged["paths"].items()))
    merged["components"]["schemas"] = dict(sorted(merged["components"]["schemas"].items()))
    merged["tags"].sort(key=lambda t: t["name"])
    return merged


def _schema_renames(service: str, doc: dict[str, Any], merged: dict[str, Any]) -> dict[str, str]:
    """Schemas whose name another service already uses for a different shape get the service's prefix."""
    renames = {}
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        if name in merged and merged[name] != schema:
            renames[name] = f"{service.capitalize()}{name}"
    return renames


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if not renames:
        return node
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.rsplit("/", 1)[-1] in renames:
            node["$ref"] = "#/components/schemas/" + renames[ref.rsplit("/", 1)[-1]]
        for value in node.values():
            _rename_refs(value, renames)
    elif isinstance(node, list):
        for value in node:
            _rename_refs(value, renames)
    return node

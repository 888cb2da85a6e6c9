"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 document, built from the operations the
registry routes and the JSON Schemas (2020-12, as OpenAPI 3.1 uses) of the very pydantic
models that validate their requests and shape their answers. Nothing is written by hand."""

from __future__ import annotations

from typing import Any

import pydantic
from flask import current_app

from oauth.api.framework import Operation, Registry
from oauth.api.problems import TITLES
from oauth.api.schemas import ProblemOut
from oauth.registry import management_api

REF = "#/components/schemas/{model}"
COMMON_ERRORS = (400, 401, 403)


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, model: type[pydantic.BaseModel], mode: str) -> dict[str, str]:
        schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        self.schemas.update(schema.pop("$defs", {}))
        self.schemas[model.__name__] = schema
        return {"$ref": REF.format(model=model.__name__)}

    def parameters(self, model: type[pydantic.BaseModel]) -> list[dict[str, Any]]:
        schema = model.model_json_schema(ref_template=REF, mode="validation")
        self.schemas.update(schema.pop("$defs", {}))
        required = set(schema.get("required", []))
        params = []
        for name, prop in schema["properties"].items():
            description = prop.pop("description", None)
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if description:
                param["description"] = description
            params.append(param)
        return params


def _path_parameters(op: Operation) -> list[dict[str, Any]]:
    params = []
    for name, converter in op.path_params:
        schema: dict[str, Any] = (
            {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
            if converter == "int"
            else {"type": "string", "minLength": 1, "maxLength": 255}
        )
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _responses(op: Operation, components: _Components) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if op.response is None:
        responses[str(op.status)] = {"description": "Done; no content."}
    else:
        success: dict[str, Any] = {
            "description": op.response.__doc__.strip().splitlines()[0]
            if op.response.__doc__ and op.response.__doc__ != pydantic.BaseModel.__doc__
            else "Success.",
            "content": {
                "application/json": {"schema": components.ref(op.response, "serialization")}
            },
        }
        if op.etag:
            success["headers"] = {
                "ETag": {"description": "Send it back in If-Match.", "schema": {"type": "string"}}
            }
        responses[str(op.status)] = success
    problem = components.ref(ProblemOut, "serialization")
    codes = set(op.errors) | (set(COMMON_ERRORS) if op.scope else set())
    if op.body is not None:
        codes |= {415}
    if op.body is not None or (op.scope and op.method != "GET"):
        codes |= {422}  # an invalid body, or a service refusing the change (framework.serve)
    for code in sorted(codes):
        responses[str(code)] = {
            "description": TITLES[code],
            "content": {"application/problem+json": {"schema": problem}},
        }
    return responses


def _operation(op: Operation, components: _Components) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": _path_parameters(op),
        "responses": _responses(op, components),
    }
    if op.description:
        doc["description"] = op.description
    if op.query is not None:
        doc["parameters"] += components.parameters(op.query)
    if op.etag and op.method in ("PATCH", "DELETE"):
        doc["parameters"].append(
            {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "description": "The ETag last read: 412 when the resource changed since.",
                "schema": {"type": "string", "maxLength": 200},
            }
        )
    if op.body is not None:
        doc["requestBody"] = {
            "required": op.method != "POST" or bool(op.body.model_json_schema().get("required")),
            "content": {"application/json": {"schema": components.ref(op.body, "validation")}},
        }
    doc["security"] = [{"oauth2": [op.scope]}] if op.scope else []
    return doc


def document(registry: Registry) -> dict[str, Any]:
    issuer = current_app.config["ISSUER"]
    components = _Components()
    paths: dict[str, Any] = {}
    for op in registry.operations:
        paths.setdefault(registry.prefix + op.openapi_path, {})[op.method.lower()] = _operation(
            op, components
        )
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": management_api.NAME,
            "version": "1",
            "description": (
                "Manage clients, APIs and client grants, users, signing keys, consents and "
                f"the audit log. Call it with a client_credentials access token for the API "
                f"{management_api.identifier()}. Errors are RFC 9457 problem details."
            ),
        },
        "servers": [{"url": issuer}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "description": "A JWT access token (RFC 9068) as Authorization: Bearer.",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": issuer + "/oauth/token",
                            "scopes": dict(management_api.SCOPES),
                        }
                    },
                }
            },
        },
    }

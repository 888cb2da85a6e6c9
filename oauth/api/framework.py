"""A small route registry: each operation declares its scope and its pydantic models; the
same declaration validates the request, shapes the answer and writes the OpenAPI document
(openapi.py). Handlers get validated models and return response models (or None: 204)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic
from flask import Blueprint, Response, current_app, request

from oauth import audit
from oauth.api import auth
from oauth.api.problems import Problem, check_if_match, etag_of, problem_response, refused
from oauth.registry import cache as registry_cache
from oauth.storage.db import write_transaction

MAX_BODY_BYTES = 256 * 1024
MAX_PATH_PARAM = 2048
MAX_DEPTH = 32
BODY_METHODS = ("POST", "PATCH", "PUT")


@dataclass
class Operation:
    method: str
    rule: str  # a Flask rule relative to the blueprint: "/clients/<client_id>"
    view: Callable[..., Any]
    scope: str | None  # None: no token needed (the OpenAPI document)
    summary: str
    tag: str
    body: type[pydantic.BaseModel] | None = None
    query: type[pydantic.BaseModel] | None = None
    response: type[pydantic.BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    etag: bool = False
    description: str = ""
    # The view runs in one write transaction. By default a conditional write (an ETag'd
    # PATCH or DELETE) does, so that If-Match is checked against the row it then changes
    # (the view reads it locked); False for a view that must call out first (a plugin
    # hook) and opens its own.
    atomic: bool | None = None

    @property
    def in_one_transaction(self) -> bool:
        if self.atomic is not None:
            return self.atomic
        return self.etag and self.method in ("PATCH", "DELETE")

    @property
    def operation_id(self) -> str:
        return self.view.__name__

    @property
    def path_params(self) -> list[tuple[str, str]]:
        """(name, converter) of each path parameter, in order."""
        return [
            (name, conv or "string") for conv, name in re.findall(r"<(?:(\w+):)?(\w+)>", self.rule)
        ]

    @property
    def openapi_path(self) -> str:
        return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", self.rule)


@dataclass
class Registry:
    blueprint: Blueprint
    prefix: str
    refusals: tuple[type[Exception], ...] = ()  # service errors answered as ``refused``
    operations: list[Operation] = field(default_factory=list)

    def operation(self, method: str, rule: str, **options: Any):
        """Declare an operation (see ``Operation``) and route it."""

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            op = Operation(method=method, rule=rule, view=view, **options)
            self.operations.append(op)
            self.blueprint.add_url_rule(
                rule,
                op.operation_id,
                lambda **params: serve(op, params, self.refusals),
                methods=[method],
            )
            return view

        return decorator


# --- serving ---------------------------------------------------------------------------


def serve(op: Operation, params: dict[str, Any], refusals: tuple = ()) -> Response:
    try:
        for name, value in params.items():
            if isinstance(value, str) and (len(value) > MAX_PATH_PARAM or not value.isprintable()):
                raise Problem(404, f"No resource with this {name}.")
        caller = None
        if op.scope is not None:
            caller = auth.authenticate()
            auth.require_scope(caller, op.scope)
        kwargs = dict(params)
        if op.query is not None:
            kwargs["query"] = _parse(op.query, request.args.to_dict(), "query", 400)
        if op.body is not None:
            kwargs["body"] = _parse(op.body, _json_body(), "body", 422)
        if op.in_one_transaction:
            with write_transaction():
                result = op.view(**kwargs)
            # the services cleared this worker's registry cache inside the transaction; a
            # thread that read meanwhile may have cached the rows as they were before it
            registry_cache.invalidate()
        else:
            result = op.view(**kwargs)
        if caller is not None and op.method == "GET":
            _audit_read(op, caller, params)
        return _respond(op, result)
    except Problem as problem:
        return problem_response(problem)
    except refusals as error:
        return problem_response(refused(error))


def _audit_read(op: Operation, caller: auth.Caller, params: dict[str, Any]) -> None:
    target = next(iter(params.values()), None)
    with write_transaction():
        audit.record(
            "management_api.read",
            client_id=caller.client.client_id,
            operation=op.operation_id,
            target=None if target is None else str(target),
        )


def dump(model: pydantic.BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def precondition(current: pydantic.BaseModel) -> None:
    """Honour ``If-Match`` against the resource as it is now (412 on a mismatch): in the
    view's write transaction, on the row read locked, so no other write comes between."""
    check_if_match(etag_of(dump(current)))


def _respond(op: Operation, result: Any) -> Response:
    if result is None:
        response = current_app.response_class(status=204)
    else:
        body = dump(result)
        response = current_app.response_class(
            json.dumps(body), status=op.status, mimetype="application/json"
        )
        if op.etag:
            response.headers["ETag"] = etag_of(body)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- requests --------------------------------------------------------------------------


def _json_body() -> Any:
    data = request.get_data(cache=True)
    if len(data) > MAX_BODY_BYTES:
        raise Problem(400, f"The body is larger than {MAX_BODY_BYTES} bytes.")
    if not data.strip():
        return {}
    if request.mimetype != "application/json":
        raise Problem(415, "Send the body as application/json.")
    try:
        value = json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise Problem(400, "The JSON body is nested too deeply.") from None
    except ValueError:  # UnicodeDecodeError and JSONDecodeError included
        raise Problem(400, "The body is not valid UTF-8 JSON.") from None
    problem = _unstorable(value, "body")
    if problem:
        raise Problem(422, "The body holds a value that cannot be stored.", errors=[problem])
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _unstorable(value: Any, *loc: Any) -> dict[str, Any] | None:
    """The first string (key or value) with NUL or a lone surrogate, which neither database
    stores, or the first value nested deeper than MAX_DEPTH (it could not be encoded again),
    as a validation error; None when there is none."""
    stack = [(value, loc)]
    while stack:
        item, where = stack.pop()
        if len(where) > MAX_DEPTH:
            message = f"nested deeper than {MAX_DEPTH} levels"
            return {"loc": list(where[:MAX_DEPTH]), "msg": message, "type": "too_deep"}
        if isinstance(item, dict):
            stack.extend((v, (*where, k)) for k, v in item.items())
            texts = [(k, where) for k in item]
        elif isinstance(item, list):
            stack.extend((v, (*where, i)) for i, v in enumerate(item))
            texts = []
        else:
            texts = [(item, where)] if isinstance(item, str) else []
        for text, at in texts:
            if "\x00" in text or any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
                message = "NUL and lone surrogates are not allowed"
                return {"loc": list(at), "msg": message, "type": "string_unstorable"}
    return None


def _parse(model: type[pydantic.BaseModel], data: Any, where: str, status: int):
    if where == "query":
        problem = _unstorable(data, "query")
        if problem:
            raise Problem(status, "A query parameter cannot be used.", errors=[problem])
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        errors = [
            {"loc": [where, *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in error.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise Problem(
            status, f"The request {where} is not valid: see errors.", errors=errors
        ) from None

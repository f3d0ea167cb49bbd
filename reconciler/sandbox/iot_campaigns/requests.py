"""Turning IoT campaign manager requests into typed values, and every handler into an endpoint that
checks the bearer token and permission first and answers errors as ``{"code", "message"}``.

Validation rules live here (400s): a campaign needs a name, a description has at most 128
characters, ids in a body must match the path, times are epoch milliseconds (string or number).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconciler.sandbox.clock import SimClock
from reconciler.sandbox.iot_campaigns.agent import Span
from reconciler.sandbox.iot_campaigns.auth import SimUser, TokenBook
from reconciler.sandbox.iot_campaigns.model import (
    DEFAULT_PAGE_SIZE,
    MAX_DESCRIPTION,
    MAX_PAGE_SIZE,
    ApiError,
    Permission,
)
from reconciler.sandbox.iot_campaigns.state import CampaignFields
from reconciler.sandbox.iot_campaigns.views import PageRequest

log = structlog.get_logger("reconciler.sandbox.iot_campaigns.app")


@dataclass(frozen=True)
class ApiCall:
    """One authorised request: who sent it and the simulated time it arrived."""

    request: Request
    user: SimUser
    now: float

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])


Handler = Callable[[ApiCall], Awaitable[Any]]


def error_response(error: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="iot"'} if error.status == 401 else None
    return JSONResponse({"code": error.code, "message": error.message}, status_code=error.status, headers=headers)


def endpoint(
    handler: Handler, *, permission: Permission, tokens: TokenBook, clock: SimClock
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler``: authorise, run, answer its result as JSON (or the error it raised)."""

    async def serve(request: Request) -> Response:
        try:
            now = clock.now()
            user = tokens.authorize(request.headers.get("authorization"), now, permission)
            return JSONResponse(await handler(ApiCall(request, user, now)))
        except ApiError as exc:
            return error_response(exc)
        except Exception as exc:  # the simulator's own bug: answer like a server would, and say so
            log.exception("iot_sim.internal_error", path=request.url.path)
            return error_response(ApiError(500, f"internal error: {type(exc).__name__}"))

    return serve


# --- bodies ------------------------------------------------------------------------------------------


async def json_body(request: Request, *, required: bool = False) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise ApiError(400, "a JSON body is required")
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def check_path_ids(body: Mapping[str, Any], **path_ids: str) -> None:
    """Ids repeated in the body (``campaignId``, ``gatewayId``) must match the path when given."""
    for key, expected in path_ids.items():
        given = body.get(key)
        if given not in (None, "") and str(given) != expected:
            raise ApiError(400, f"{key} {given!r} in the body does not match {expected!r} in the path")


def string_list(body: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ApiError(400, f"{key} must be a list of non-empty strings")
    return tuple(value)


def required_string(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"{key} is required")
    return value


def description(value: Any) -> str:
    if not isinstance(value, str):
        raise ApiError(400, "description must be a string")
    if len(value) > MAX_DESCRIPTION:
        raise ApiError(400, f"description has {len(value)} characters; at most {MAX_DESCRIPTION} are allowed")
    return value


def campaign_fields(spec: Mapping[str, Any], *, creating: bool) -> CampaignFields:
    """The fields of a create body or of an edit's ``updateSpec``."""
    if creating or "name" in spec:
        name: str | None = required_string(spec, "name")
    else:
        name = None
    text = None if spec.get("description") is None else description(spec["description"])
    packages = None if spec.get("packages") is None else string_list(spec, "packages")
    return CampaignFields(name=name, description=text, packages=packages, settings=_settings(spec))


def _settings(spec: Mapping[str, Any]) -> dict[str, str] | None:
    container = spec.get("campaignSettings")
    if container is None:
        return None
    settings = container.get("settings", {}) if isinstance(container, dict) else None
    if not isinstance(settings, dict) or not all(
        isinstance(v, str | int | float | bool) for v in settings.values()
    ):
        raise ApiError(400, "campaignSettings must be {\"settings\": {name: value, ...}} with scalar values")
    return {str(k): str(v) for k, v in settings.items()}


def window_span(body: Mapping[str, Any]) -> Span:
    """``begin``/``end`` as epoch milliseconds (strings as the seed shows, numbers accepted too)."""
    begin, end = _epoch_ms(body, "begin"), _epoch_ms(body, "end")
    if begin >= end:
        raise ApiError(400, f"begin ({begin}) must be before end ({end})")
    return Span(begin / 1000, end / 1000)


def _epoch_ms(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ApiError(400, f"{key} must be epoch milliseconds (a string or a number)")
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"{key} must be epoch milliseconds, not {value!r}") from None


def optional_interval(body: Mapping[str, Any]) -> int | None:
    value = body.get("reevaluationIntervalSeconds")
    if value in (None, ""):
        return None
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"reevaluationIntervalSeconds must be a whole number, not {value!r}") from None
    if seconds <= 0:
        raise ApiError(400, "reevaluationIntervalSeconds must be positive")
    return seconds


# --- queries -----------------------------------------------------------------------------------------


def page_request(request: Request) -> PageRequest:
    """``page.number`` / ``page.size`` (also ``page`` / ``size``); 0-based; size capped at 100."""
    query = request.query_params
    number = _non_negative(query.get("page.number", query.get("page")), "page.number", default=0)
    size = _non_negative(query.get("page.size", query.get("size")), "page.size", default=DEFAULT_PAGE_SIZE)
    if size == 0:
        raise ApiError(400, "page.size must be at least 1")
    return PageRequest(number, min(size, MAX_PAGE_SIZE))


def _non_negative(value: str | None, name: str, *, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, f"{name} must be a whole number, not {value!r}") from None
    if number < 0:
        raise ApiError(400, f"{name} must not be negative")
    return number


def sort_order(request: Request, fields: Mapping[str, Callable[[Any], Any]]) -> tuple[Callable[[Any], Any], bool]:
    """``page.sort`` / ``sort`` as ``FIELD[,asc|desc]`` (or just a direction): key and reverse flag."""
    raw = request.query_params.get("page.sort", request.query_params.get("sort", ""))
    field_name, _, direction = raw.partition(",")
    if field_name.lower() in ("asc", "desc") and not direction:
        field_name, direction = "", field_name
    if direction.lower() not in ("", "asc", "desc"):
        raise ApiError(400, f"sort direction must be asc or desc, not {direction!r}")
    key = fields.get(field_name or next(iter(fields)))
    if key is None:
        raise ApiError(400, f"cannot sort by {field_name!r}; known: {', '.join(fields)}")
    return key, direction.lower() == "desc"

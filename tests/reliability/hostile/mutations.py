"""Hostile cases made by mutating the valid declarations as data: wrong types at every node, missing
required fields, unknown and misspelt fields, broken references, duplicate names, and values outside
what each field allows. Each is broken by construction; the file is written back as YAML, so every
problem has a position.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from tests.reliability.hostile.base import DECL, HostileCase, Urls, documents_copy, dump

Docs = dict[str, list[dict[str, Any]]]
Path_ = tuple[str | int, ...]
FREE_FORM = ("labels", "annotations", "settings")  # maps whose keys are the user's own


def _nodes(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _nodes(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nodes(item, (*path, index))


def _get(doc: Any, path: Path_) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _set(doc: Any, path: Path_, value: Any) -> None:
    _get(doc, path[:-1])[path[-1]] = value


def _delete(doc: Any, path: Path_) -> None:
    del _get(doc, path[:-1])[path[-1]]


def _slug(path: Path_) -> str:
    return ".".join(str(p) for p in path) or "document"


def _case(name: str, docs: Docs, file: str) -> HostileCase:
    return HostileCase(name, {f"{DECL}/{file}": dump(docs[file])})


def _locate(urls: Urls, kind: str, name: str) -> tuple[str, int]:
    for file, documents in documents_copy(urls).items():
        for index, doc in enumerate(documents):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return file, index
    raise KeyError(f"{kind}/{name}")


def mutate(urls: Urls, name: str, kind: str, resource: str, change: Callable[[dict[str, Any]], None]) -> HostileCase:
    docs = documents_copy(urls)
    file, index = _locate(urls, kind, resource)
    change(docs[file][index])
    return _case(name, docs, file)


def wrong_shape(value: Any) -> Any:
    """A value of the opposite shape: a mapping for a scalar, a list for a mapping, a mapping for a list."""
    if isinstance(value, dict):
        return [1, 2]
    if isinstance(value, list):
        return {"a": "b"}
    return {"bad": [1]}


def type_cases(urls: Urls) -> list[HostileCase]:
    """Every node of every document (outside free-form maps) replaced by a value of the wrong shape."""
    cases = []
    for file, documents in documents_copy(urls).items():
        for index, document in enumerate(documents):
            who = f"{document['kind']}-{document['metadata']['name']}"
            for path, value in _nodes(document):
                if not path or any(p in FREE_FORM for p in path[:-1]):
                    continue
                docs = documents_copy(urls)
                _set(docs[file][index], path, wrong_shape(value))
                cases.append(_case(f"type/{who}/{_slug(path)}", docs, file))
    return cases


REQUIRED: dict[tuple[str, str], tuple[Path_, ...]] = {
    ("Backend", "iot"): (("spec", "type"), ("spec", "url"), ("spec", "auth"), ("spec", "auth", "password")),
    ("Backend", "yate"): (("spec", "auth", "secret"),),
    ("Backend", "og"): (("spec", "auth", "privateKey"), ("spec", "auth", "instanceId")),
    ("Package", "fw"): (("spec", "backend"), ("spec", "file")),
    ("Campaign", "rollout"): (("spec", "backend"), ("spec", "rollout", "waves")),
    ("Campaign", "applet"): (("spec", "campaignId"),),
    ("Campaign", "notice"): (("spec", "text"), ("spec", "recipients")),
    ("Campaign", "welcome"): (("spec", "from"),),
    ("GatewayAssignment", "rollout-berlin"): (("spec", "campaign"), ("spec", "gateways")),
    ("Schedule", "rollout-nights"): (("spec", "campaign"), ("spec", "download", "end")),
    ("Schedule", "notice-hours"): (("spec", "quietHours", "timezone"),),
}
ENVELOPE: tuple[Path_, ...] = (("apiVersion",), ("kind",), ("metadata",), ("metadata", "name"), ("spec",))


def missing_cases(urls: Urls) -> list[HostileCase]:
    cases = []
    for (kind, name), paths in REQUIRED.items():
        for path in paths + (ENVELOPE if kind in ("Backend", "Schedule") else ()):
            cases.append(mutate(urls, f"missing/{kind}-{name}/{_slug(path)}", kind, name,
                                lambda d, p=path: _delete(d, p)))
    return cases


def unknown_field_cases(urls: Urls) -> list[HostileCase]:
    """An unknown key in every mapping that has a fixed set of keys; and misspelt keys of each spec."""
    cases = []
    for file, documents in documents_copy(urls).items():
        for index, document in enumerate(documents):
            who = f"{document['kind']}-{document['metadata']['name']}"
            for path, value in _nodes(document):
                if isinstance(value, dict) and not (path and path[-1] in FREE_FORM):
                    docs = documents_copy(urls)
                    _get(docs[file][index], path)["unexpectedField"] = "x"
                    cases.append(_case(f"unknown/{who}/{_slug(path)}", docs, file))
            for key in document["spec"]:
                docs = documents_copy(urls)
                spec = docs[file][index]["spec"]
                spec[_typo(key)] = spec.pop(key)
                cases.append(_case(f"typo/{who}/spec.{key}", docs, file))
    return cases


def _typo(key: str) -> str:
    """Swap two neighbouring different letters, or drop the last one (``backend`` -> ``abckend``, ``to`` -> ``t``)."""
    for i in range(len(key) - 1):
        if key[i] != key[i + 1] and len(key) > 3:
            return key[:i] + key[i + 1] + key[i] + key[i + 2:]
    return key[:-1] or "x"


REFERENCES: tuple[tuple[str, str, Path_, Any], ...] = (
    ("Campaign", "rollout", ("spec", "backend"), "nope"),
    ("Campaign", "applet", ("spec", "backend"), "nope"),
    ("Campaign", "notice", ("spec", "backend"), "nope"),
    ("Campaign", "welcome", ("spec", "backend"), "nope"),
    ("Package", "fw", ("spec", "backend"), "nope"),
    ("Package", "fw", ("spec", "backend"), "yate"),
    ("Campaign", "rollout", ("spec", "packages"), ["fw", "nope"]),
    ("Campaign", "rollout", ("spec", "backend"), "og"),
    ("Campaign", "applet", ("spec", "backend"), "iot"),
    ("Campaign", "welcome", ("spec", "backend"), "yate"),
    ("GatewayAssignment", "rollout-berlin", ("spec", "campaign"), "nope"),
    ("GatewayAssignment", "rollout-berlin", ("spec", "packages"), ["nope"]),
    ("GatewayAssignment", "notice-ports", ("spec", "campaign"), "rollout"),
    ("GatewayAssignment", "rollout-berlin", ("spec", "campaign"), "notice"),
    ("Schedule", "rollout-nights", ("spec", "campaign"), "nope"),
    ("Schedule", "rollout-nights", ("spec", "assignment"), "nope"),
    ("Schedule", "rollout-nights", ("spec", "assignment"), "notice-ports"),
    ("Schedule", "notice-hours", ("spec", "campaign"), "nope"),
    ("Schedule", "applet-period", ("spec", "campaign"), "welcomed"),
)


def reference_cases(urls: Urls) -> list[HostileCase]:
    return [mutate(urls, f"reference/{kind}-{name}/{_slug(path)}={value}", kind, name,
                   lambda d, p=path, v=value: _set(d, p, v))
            for kind, name, path, value in REFERENCES]


def duplicate_name_cases(urls: Urls) -> list[HostileCase]:
    """A second document with the same kind and name, in the same file and in another file."""
    cases = []
    for file, documents in documents_copy(urls).items():
        for document in documents:
            who = f"{document['kind']}-{document['metadata']['name']}"
            if who not in ("Backend-iot", "Package-fw", "Campaign-rollout", "GatewayAssignment-notice-ports",
                           "Schedule-rollout-nights", "Campaign-welcome"):
                continue
            docs = documents_copy(urls)
            docs[file].append(copy.deepcopy(document))
            cases.append(_case(f"duplicate-name/{who}/same-file", docs, file))
            cases.append(HostileCase(f"duplicate-name/{who}/other-file", {f"{DECL}/zz-copy.yaml": dump([document])}))
    return cases


def _value_cases(urls: Urls) -> Iterator[tuple[str, str, Path_, Any]]:
    for name in ("Rollout", "roll_out", "-rollout", "rollout-", "r" * 64, "", "rollöut", "a/b", "a.b", "a b", "..",
                 123, True):
        yield "Schedule", "notice-hours", ("metadata", "name"), name
    for url in ("ftp://127.0.0.1/", "http://", "not a url", "http://[::1", "javascript:alert(1)",
                "file:///etc/passwd", "", "http://exa mple.com/"):
        yield "Backend", "yate", ("spec", "url"), url
    for field, value in (("begin", "2027-03-01T06:00:00Z"), ("begin", "2027-03-01T05:00:00Z"),
                         ("begin", "2027-03-01T01:00:00"), ("begin", "2027-02-30T01:00:00Z"), ("begin", "tomorrow"),
                         ("end", "99999-01-01T00:00:00Z"), ("end", "2027-03-01T05:00:00+25:00")):
        yield "Schedule", "rollout-nights", ("spec", "download", field), value
    for ports in ([32], [-1], [0, 0], ["0"], [], [1.5], [99999999999]):
        yield "GatewayAssignment", "notice-ports", ("spec", "ports"), ports
    for field, value in (("concurrency", 0), ("concurrency", -1), ("timeoutSeconds", 0), ("timeoutSeconds", -5),
                         ("maxRetries", 11), ("maxRetries", 1.5)):
        yield "Backend", "iot", ("spec", "limits", field), value
    for path, value in ((("spec", "state"), "runing"), (("spec", "approval"), "maybe"),
                        (("spec", "rollout", "waves"), ["50%", "10%", "100%"]),
                        (("spec", "rollout", "waves"), ["10%", "90%"]), (("spec", "rollout", "waves"), ["150%"]),
                        (("spec", "rollout", "waves"), [0.5, 1]), (("spec", "rollout", "successThreshold"), "120%"),
                        (("spec", "rollout", "maxFailureRate"), "-5%"), (("spec", "packages"), ["fw", "fw"])):
        yield "Campaign", "rollout", path, value
    yield "Backend", "iot", ("spec", "type"), "iot"
    yield "Backend", "og", ("spec", "options"), {"method": "sendPigeon"}
    yield "Backend", "gw", ("spec", "options"), {"authScheme": "ntlm"}
    for field, value in (("onUnknownOutcome", "retry"), ("encoding", "utf-8"), ("state", "running"),
                         ("text", ""), ("rate", {"perSecond": 0}), ("rate", {})):
        yield "Campaign", "notice", ("spec", field), value
    for field, value in (("from", "25:00"), ("to", "8"), ("timezone", "Mars/Olympus"),
                         ("timezone", "../../../etc/passwd"), ("timezone", "")):
        yield "Schedule", "notice-hours", ("spec", "quietHours", field), value
    yield "Package", "fw", ("spec", "description"), "d" * 129
    for value in (-1, "147", 1.5, "1e400"):
        yield "Campaign", "applet", ("spec", "campaignId"), value
    yield "Campaign", "applet", ("spec", "participants", "retryFailed", "maxAttempts"), 0
    yield "Campaign", "applet", ("spec", "state"), "active"
    for version in ("reconciler/v2", "v1", ""):
        yield "Backend", "og", ("apiVersion",), version
    for kind in ("campaign", "Pod", ""):
        yield "Schedule", "applet-period", ("kind",), kind
    for recipients in ({"inline": []}, {"inline": ["+4917abc"]}, {"inline": ["+584140000001", "+584140000001"]},
                       {"inline": [{"number": "+584140000003", "params": "Ana"}]},
                       {"file": f"../{DECL}/../recipients/notice.csv", "inline": ["+584140000003"]}):
        yield "Campaign", "welcome", ("spec", "recipients"), recipients
    yield "GatewayAssignment", "rollout-berlin", ("spec", "gateways"), ["gw-00001", "gw-00001"]
    yield "GatewayAssignment", "rollout-berlin", ("spec", "gateways"), ["gw-00006"]  # also in the Munich file
    yield "GatewayAssignment", "rollout-berlin", ("spec", "gateways"), ["gw 00001", "GW-00002", "gw-0000１"]


SECRET_VALUES: tuple[tuple[str, str, Path_, Any], ...] = (
    ("Backend", "iot", ("spec", "auth", "password"), "hunter2-literal"),
    ("Backend", "iot", ("spec", "auth", "password"), 12345678),
    ("Backend", "iot", ("spec", "auth", "password"), ["hunter2"]),
    ("Backend", "yate", ("spec", "auth", "secret"), {"env": "YATE_SECRET", "file": "../x"}),
    ("Backend", "yate", ("spec", "auth", "secret"), {"env": "1BAD"}),
    ("Backend", "yate", ("spec", "auth", "secret"), {"env": "A=B"}),
    ("Backend", "yate", ("spec", "auth", "secret"), {"file": "missing-secret"}),
    ("Backend", "yate", ("spec", "auth", "secret"), {"value": "sandbox-secret"}),
    ("Backend", "og", ("spec", "auth", "privateKey"), "sandbox-private"),
    ("Backend", "og", ("spec", "auth"), "admin:admin"),
)


def value_cases(urls: Urls) -> list[HostileCase]:
    cases = []
    for kind, name, path, value in [*_value_cases(urls), *SECRET_VALUES]:
        label = repr(value) if len(repr(value)) < 40 else f"{repr(value)[:30]}..{len(repr(value))}"
        cases.append(mutate(urls, f"value/{kind}-{name}/{_slug(path)}={label}", kind, name,
                            lambda d, p=path, v=value: _set(d, p, v)))
    return cases


def all_cases(urls: Urls) -> list[HostileCase]:
    return [*type_cases(urls), *missing_cases(urls), *unknown_field_cases(urls), *reference_cases(urls),
            *duplicate_name_cases(urls), *value_cases(urls)]

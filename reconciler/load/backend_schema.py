"""The Backend schema as the loader applies it: the file in ``schemas/``, with the backend types the registry
knows (``spec.type``'s list) and the JSON Schema fragments plug-in types give for their own ``auth`` keys and
``options``.

The file lists the built-in types (editors complete and check them); a test keeps that list equal to the
built-in registry. A type registered at run time (an entry point, a test) is accepted without editing the
file, with the same messages for a wrong type as before.
"""

from __future__ import annotations

import copy
from typing import Any

from reconciler.backends import registry
from reconciler.model import Kind

#: the sections of ``Backend.spec`` a descriptor may add properties to
EXTENSIBLE = ("auth", "options")


def with_registered_backends(kind: Kind, schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (as read from its file) completed from the registry; other kinds are returned as they are."""
    if kind is not Kind.BACKEND:
        return schema
    schema = copy.deepcopy(schema)
    spec = schema["properties"]["spec"]["properties"]
    spec["type"]["enum"] = list(registry.types())
    for descriptor in registry.descriptors():
        for section in EXTENSIBLE:
            for key, fragment in descriptor.schema.get(section, {}).items():
                spec[section]["properties"].setdefault(key, copy.deepcopy(dict(fragment)))
    return schema

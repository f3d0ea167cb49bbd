"""The retired schema fast path, kept only so that ``validate_bench.py`` can measure it beside jsonschema_rs.

Until issue 18 the loader compiled each JSON Schema by hand into nested closures answering "certainly
valid?" in a few microseconds, with an allow-list of the keywords our schemas use (any other keyword
failed compilation). ``reconciler.load.schema_check`` now asks jsonschema_rs' compiled validator
instead; nothing in ``reconciler/`` imports this module. The answer is conservative: it may say False
for a valid document, never True for an invalid one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.load.schema_check import ecma_pattern

Check = Callable[[Any], bool]
FormatTest = Callable[[str], bool]

_ANNOTATIONS = frozenset({
    "$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples",
    "patternErrorMessage", "deprecated", "readOnly", "writeOnly",
})
_SUPPORTED = frozenset({
    "$ref", "type", "enum", "const",
    "minLength", "maxLength", "pattern", "format",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "properties", "additionalProperties", "required", "minProperties", "maxProperties", "propertyNames",
    "items", "minItems", "maxItems", "uniqueItems",
})


_TYPED = frozenset({
    "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "properties", "additionalProperties", "required", "minProperties", "maxProperties", "propertyNames",
    "items", "minItems", "maxItems", "uniqueItems",
})


def _all_of(tests: list[Check]) -> Check:
    if not tests:
        return _accept
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda value: first(value) and second(value)
    return lambda value: all(test(value) for test in tests)


def _reject(_value: Any) -> bool:
    return False


def _accept(_value: Any) -> bool:
    return True


def _json_in(value: Any, allowed: list[Any]) -> bool:
    """``value in allowed`` with JSON semantics: true is not 1, and containers are left to jsonschema."""
    kind = type(value)
    if kind is bool:
        return any(type(item) is bool and item is value for item in allowed)
    if kind is int or kind is float:
        return any(type(item) in (int, float) and item == value for item in allowed)
    if kind is str or value is None:
        return any(type(item) is kind and item == value for item in allowed)
    return False


class _Compiler:
    def __init__(self, root: Mapping[str, Any], formats: Mapping[str, FormatTest]) -> None:
        self.root = root
        self.formats = formats
        self.refs: dict[str, Check] = {}

    def ref(self, pointer: str) -> Check:
        if not pointer.startswith("#/"):
            raise ValueError(f"only local $ref is supported, got {pointer!r}")
        if pointer not in self.refs:
            holder: list[Check] = []
            self.refs[pointer] = lambda value: holder[0](value)  # used only by a recursive reference
            target: Any = self.root
            for part in pointer[2:].split("/"):
                target = target[part]
            holder.append(self.compile(target))
            self.refs[pointer] = holder[0]
        return self.refs[pointer]

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return _accept
        if schema is False:
            return _reject
        unknown = set(schema) - _SUPPORTED - _ANNOTATIONS
        if unknown:
            raise ValueError(f"schema keyword(s) not supported by the fast check: {sorted(unknown)}")
        tests: list[Check] = []
        if "type" in schema or set(schema) & _TYPED:
            tests.append(self._typed(schema))
        if "$ref" in schema:
            tests.append(self.ref(schema["$ref"]))
        for keyword in ("enum", "const"):
            if keyword in schema:
                allowed = list(schema[keyword]) if keyword == "enum" else [schema[keyword]]
                if all(type(item) is str for item in allowed):
                    names = frozenset(allowed)
                    tests.append(lambda value, names=names: type(value) is str and value in names)
                else:
                    tests.append(lambda value, allowed=allowed: _json_in(value, allowed))
        return _all_of(tests)

    def _typed(self, schema: Mapping[str, Any]) -> Check:
        """The type check and the keywords that apply to one JSON type each."""
        types = schema.get("type")
        type_set = {types} if isinstance(types, str) else set(types) if types is not None else None

        def allows(*names: str) -> bool:
            return type_set is None or any(name in type_set for name in names)

        by_type: dict[type, Check] = {}
        if allows("string"):
            by_type[str] = self._string(schema)
        if allows("integer", "number"):
            number = self._number(schema)
            by_type[int] = number
            # a float passes "integer" only when whole: leave that rare case to jsonschema
            by_type[float] = number if allows("number") else _reject
        if allows("boolean"):
            by_type[bool] = _accept
        if allows("null"):
            by_type[type(None)] = _accept
        if allows("object"):
            by_type[dict] = self._object(schema)
        if allows("array"):
            by_type[list] = self._array(schema)
        if len(by_type) == 1:
            ((only, test),) = by_type.items()
            return lambda value: type(value) is only and test(value)
        lookup = by_type.get
        return lambda value: lookup(type(value), _reject)(value)

    def _string(self, schema: Mapping[str, Any]) -> Check:
        low = schema.get("minLength", 0)
        high = schema.get("maxLength")
        search = ecma_pattern(schema["pattern"]).search if "pattern" in schema else None
        fmt = self.formats.get(schema["format"]) if "format" in schema else None
        if "format" in schema and fmt is None:
            return _reject  # a format we do not check here: let jsonschema decide
        if not low and high is None and search is None and fmt is None:
            return _accept

        def check(value: str) -> bool:
            size = len(value)
            if size < low or (high is not None and size > high):
                return False
            if search is not None and search(value) is None:
                return False
            return fmt is None or fmt(value)

        return check

    def _number(self, schema: Mapping[str, Any]) -> Check:
        low, high = schema.get("minimum"), schema.get("maximum")
        above, below = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")

        def check(value: float) -> bool:
            if value != value:  # NaN compares false with every bound; let jsonschema decide
                return False
            return ((low is None or value >= low) and (high is None or value <= high)
                    and (above is None or value > above) and (below is None or value < below))

        return check

    def _object(self, schema: Mapping[str, Any]) -> Check:
        properties = {name: self.compile(sub) for name, sub in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties", True)
        extra_check = None if extra is False else self.compile(extra)
        required = tuple(schema.get("required", ()))
        low, high = schema.get("minProperties", 0), schema.get("maxProperties")
        names = self.compile(schema["propertyNames"]) if "propertyNames" in schema else None

        def check(value: dict[str, Any]) -> bool:
            for name in required:
                if name not in value:
                    return False
            if len(value) < low or (high is not None and len(value) > high):
                return False
            for name, item in value.items():
                test = properties.get(name, extra_check)
                if test is None or not test(item):
                    return False
                if names is not None and not names(name):
                    return False
            return True

        return check

    def _array(self, schema: Mapping[str, Any]) -> Check:
        items = self.compile(schema["items"]) if "items" in schema else None
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        unique = bool(schema.get("uniqueItems"))

        def check(value: list[Any]) -> bool:
            if len(value) < low or (high is not None and len(value) > high):
                return False
            if items is not None:
                for item in value:
                    if not items(item):
                        return False
            if unique:
                try:
                    keys = {(type(item) is bool, item) for item in value}
                except TypeError:  # unhashable items: let jsonschema decide
                    return False
                if len(keys) != len(value):
                    return False
            return True

        return check


def compile_fast_check(schema: Mapping[str, Any], *, formats: Mapping[str, FormatTest]) -> Check:
    """Compile ``schema``: the result returns True only for instances the schema accepts."""
    return _Compiler(schema, formats).compile(schema)

"""YAML text to plain data with the position of every node, safely.

PyYAML's composer is recursive (the C one crashes on deeply nested input) and its constructor
knows nothing of positions, so documents are built here from the parser's event stream instead:
one loop with an explicit stack, which bounds nesting depth and alias expansion, rejects duplicate
keys and non-core tags at the offending node, and records where each node was written.
Values are JSON-like: dict, list, str, int, float, bool, None (timestamps stay strings).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from reconciler.diagnostics import Diagnostic
from reconciler.load.positions import YamlDocument, pack, unpack
from reconciler.load.yaml_scalars import (
    ALLOWED_TAGS_TEXT, COLLECTION_TAGS, FLOAT, IMPLICIT, INT, MAP, SCALAR_TAGS, SEQ, STR, construct_scalar,
    describe_noun, number_problem, short_tag,
)

Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_DEPTH = 64
MAX_ALIAS_EXPANSION = 10_000


class _Abort(Exception):
    """The current document cannot be built (alias bomb, bad alias): skip to its end."""


class _AbortFile(Exception):
    """Stop reading the file: it nests too deeply (libyaml slows down quadratically on such input)."""


class _Frame:
    """An open mapping or sequence while its events arrive."""

    __slots__ = ("container", "is_map", "kmarks", "vmarks", "key", "key_mark", "anchor", "start_count", "merges",
                 "discard", "start", "sub_depth")

    def __init__(self, container: Any, is_map: bool, anchor: str | None, start_count: int, start: int) -> None:
        self.container = container
        self.is_map = is_map
        self.kmarks: dict[str, int] = {}  # mapping: key -> position of the key
        self.vmarks: Any = {} if is_map else []  # mapping: key -> position of the value; list: item positions
        self.key: Any = _NO_KEY  # the pending key; _NO_KEY while a key is awaited; _DISCARD drops the value
        self.key_mark = 0
        self.anchor = anchor
        self.start_count = start_count
        self.merges: list[tuple[Any, int]] | None = None
        self.discard = False
        self.start = start
        self.sub_depth = 0  # nesting depth of the deepest child collection


_NO_KEY = object()
_DISCARD = object()
_MERGE_KEY = object()


class _DocumentState:
    """What is known about the document being built."""

    def __init__(self, file: str, problems: list[Diagnostic]) -> None:
        self.file = file
        self.problems = problems
        self.marks: dict[int, tuple[Any, ...]] = {}
        self.anchors: dict[str, tuple[Any, int, int]] = {}  # name -> (value, expanded size, depth)
        self.open_anchors: set[str] = set()
        self.stack: list[_Frame] = []
        self.count = 0  # nodes so far, an alias counting as the size of what it expands to
        self.expanded = 0  # nodes added by aliases
        self.root: Any = None
        self.root_mark = 1 << 32 | 1
        self.had_problem = False

    def problem(self, packed: int, message: str) -> None:
        self.had_problem = True
        line, col = unpack(packed)
        self.problems.append(Diagnostic(message, self.file, line, col))

    def attach(self, value: Any, packed: int, depth: int) -> None:
        """Put a finished node into the open collection (or make it the document's root)."""
        stack = self.stack
        if not stack:
            self.root, self.root_mark = value, packed
            return
        frame = stack[-1]
        if depth > frame.sub_depth:
            frame.sub_depth = depth
        if not frame.is_map:
            frame.container.append(value)
            frame.vmarks.append(packed)
            return
        key = frame.key
        frame.key = _NO_KEY
        if key is _DISCARD:
            return
        if key is _MERGE_KEY:
            if frame.merges is None:
                frame.merges = []
            frame.merges.append((value, packed))
            return
        if key in frame.container:
            line, col = unpack(frame.kmarks.get(key, 0))
            self.problem(frame.key_mark, f"duplicate key `{key}` (first written at line {line}, column {col})")
            return
        frame.container[key] = value
        frame.kmarks[key] = frame.key_mark
        frame.vmarks[key] = packed

    def alias(self, event: Any) -> None:
        packed = pack(event.start_mark)
        name = event.anchor
        found = self.anchors.get(name)
        if found is None:
            if name in self.open_anchors:
                self.problem(packed, f"alias `*{name}` refers to a node that contains it (recursive alias)")
            else:
                self.problem(packed, f"alias `*{name}` refers to no anchor `&{name}` defined before it")
            raise _Abort
        value, size, depth = found
        self.count += size
        self.expanded += size
        if self.expanded > MAX_ALIAS_EXPANSION:
            self.problem(packed, f"alias expansion too large: aliases in this document expand to more than "
                                 f"{MAX_ALIAS_EXPANSION:,} nodes")
            raise _Abort
        if len(self.stack) + depth > MAX_DEPTH:
            self.problem(packed, f"document nested deeper than {MAX_DEPTH} levels (through alias `*{name}`)")
            raise _Abort
        stack = self.stack
        if stack and stack[-1].is_map and stack[-1].key is _NO_KEY:
            self.problem(packed, "a mapping key must be a plain string, not an alias")
            stack[-1].key = _DISCARD
            return
        self.attach(value, packed, depth)

    def start(self, event: Any, is_map: bool) -> None:
        packed = pack(event.start_mark)
        self.count += 1
        stack = self.stack
        if len(stack) >= MAX_DEPTH:
            self.problem(packed, f"document nested deeper than {MAX_DEPTH} levels; the rest of the file is not read")
            raise _AbortFile
        tag = event.tag
        if tag is not None and (tag not in COLLECTION_TAGS or tag == (SEQ if is_map else MAP)):
            self.problem(packed, f"tag `{short_tag(tag)}` is not allowed; only the YAML core tags are ({ALLOWED_TAGS_TEXT})")
        frame = _Frame({} if is_map else [], is_map, event.anchor, self.count, packed)
        if stack and stack[-1].is_map and stack[-1].key is _NO_KEY:
            self.problem(packed, "a mapping key must be a plain string, not a " + ("mapping" if is_map else "list"))
            frame.discard = True
            stack[-1].key = _DISCARD
        if is_map:
            self.marks[id(frame.container)] = (frame.container, frame.kmarks, frame.vmarks)
        else:
            self.marks[id(frame.container)] = (frame.container, frame.vmarks)
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        stack.append(frame)

    def end(self) -> None:
        frame = self.stack.pop()
        if frame.merges:
            self._merge(frame)
        depth = frame.sub_depth + 1
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (frame.container, self.count - frame.start_count + 1, depth)
        if not frame.discard:
            self.attach(frame.container, frame.start, depth)

    def _merge(self, frame: _Frame) -> None:
        """``<<: *base`` / ``<<: [*a, *b]``: keys written in the mapping win, then earlier sources."""
        target = frame.container
        for value, packed in frame.merges or ():
            for source in value if isinstance(value, list) else [value]:
                if not isinstance(source, dict):
                    self.problem(packed, f"`<<` merges mappings only; found {describe_noun(source)}")
                    continue
                for key, item in source.items():
                    if key not in target:
                        target[key] = item
                        frame.kmarks[key] = packed
                        frame.vmarks[key] = packed


_SECRET_STEPS = frozenset({"auth", "secret", "password", "privateKey"})  # values never repeated in messages


def _steps(stack: list[_Frame]) -> list[str | int]:
    """Where the node being built sits: the keys and indexes of the open collections."""
    steps: list[str | int] = []
    for frame in stack:
        if frame.is_map:
            steps.append(frame.key if isinstance(frame.key, str) else "<<" if frame.key is _MERGE_KEY else "?")
        else:
            steps.append(len(frame.container))
    return steps


def _where(stack: list[_Frame]) -> str:
    """``spec.limits.timeoutSeconds: `` for the node being built (empty at the top of a document)."""
    text = ""
    for step in _steps(stack):
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text + ": " if text else ""


def _secret_place(stack: list[_Frame]) -> bool:
    return any(step in _SECRET_STEPS for step in _steps(stack))


_BAD_CHAR = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _offset_of(text: str, line: int, column: int) -> int:
    """Character offset of a 0-based line and column."""
    offset = 0
    for _ in range(line):
        offset = text.find("\n", offset) + 1
        if offset == 0:
            return len(text)
    return offset + column


def _position_of_offset(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


@dataclass
class FileParse:
    """How reading one file ended: ``cut_short`` when a problem stopped it before its end, so what it
    declares after that point is unknown (a missing reference may be declared there)."""

    cut_short: bool = False


def parse_documents(data: bytes, text: str, *, file: str, problems: list[Diagnostic],
                    outcome: FileParse | None = None) -> Iterator[YamlDocument]:
    """Yield the documents of one file (``data`` is its UTF-8 bytes, ``text`` the same, decoded).

    Problems go to ``problems``. A syntax error, a character YAML does not allow or nesting too deep ends
    the file (``outcome.cut_short``); the documents before it are kept.
    """
    loader = Loader(data)
    ended = outcome if outcome is not None else FileParse()
    try:
        yield from _documents(loader, file, problems)
    except _AbortFile:
        ended.cut_short = True
        return
    except yaml.MarkedYAMLError as exc:
        ended.cut_short = True
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        deep = _first_too_deep(text, _offset_of(text, mark.line, mark.column) + 1) if mark is not None else None
        if deep is not None:
            problems.append(Diagnostic(f"document nested deeper than {MAX_DEPTH} levels; the rest of the file is "
                                       "not read", file, *deep))
            return
        message = f"YAML syntax error: {exc.problem or exc.context}"
        if mark is not None and text[_offset_of(text, mark.line, mark.column):][:1] == "\t":
            message += "; tabs cannot indent YAML, use spaces"
        if exc.context and exc.problem and exc.context_mark is not None:
            message += f" ({exc.context} at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
        problems.append(Diagnostic(message, file, line, col))
    except yaml.YAMLError as exc:  # a ReaderError: a character that YAML does not allow
        ended.cut_short = True
        found = _BAD_CHAR.search(text)
        if found is not None:
            line, col = _position_of_offset(text, found.start())
            problems.append(Diagnostic(f"character U+{ord(found.group()):04X} is not allowed in YAML", file, line, col))
        else:
            problems.append(Diagnostic(f"YAML cannot be read: {exc}", file))
    finally:
        loader.dispose()


def _first_too_deep(text: str, end: int) -> tuple[int, int] | None:
    """Line and column of the first collection opened deeper than ``MAX_DEPTH`` in ``text[:end]``, if any.

    Why: libyaml scans up to 1,024 characters ahead in flow style (a ``[`` may start a key), and the
    libyaml bundled with PyYAML 6.0.4 stops at 1,000 levels with an error of its own, so on deep flow
    input its error arrives before our event loop sees level 65. The pure-Python parser, run only on
    the text before such an error, decides whether our limit was crossed first; so the diagnostic does not
    depend on the PyYAML version or on whether the C loader is installed.
    """
    loader = yaml.SafeLoader(text[:end])
    depth = 0
    try:
        while (event := loader.get_event()) is not None:
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH and (mark := event.start_mark) is not None:  # a loader's events are marked
                    return mark.line + 1, mark.column + 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    return None


def _documents(loader: Any, file: str, problems: list[Diagnostic]) -> Iterator[YamlDocument]:
    """The event loop. Scalars, by far the most frequent nodes, are handled inline for speed."""
    scalar_event, mapping_start, sequence_start = yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent
    mapping_end, sequence_end, alias_event = yaml.MappingEndEvent, yaml.SequenceEndEvent, yaml.AliasEvent
    document_start, document_end, stream_end = yaml.DocumentStartEvent, yaml.DocumentEndEvent, yaml.StreamEndEvent
    implicit_get, str_tag, scalar_tags, no_key = IMPLICIT.get, STR, SCALAR_TAGS, _NO_KEY
    int_tag, float_tag = INT, FLOAT
    get_event = loader.get_event
    doc: _DocumentState | None = None
    index = 0
    skipping = False
    while True:
        event = get_event()
        kind = type(event)
        if skipping and kind is not document_end and kind is not stream_end:
            continue
        try:
            if kind is scalar_event:
                assert doc is not None
                mark = event.start_mark
                packed = (mark.line + 1) << 32 | (mark.column + 1)
                doc.count += 1
                tag = event.tag
                value = event.value
                stack = doc.stack
                frame = stack[-1] if stack else None
                if tag is not None and tag not in scalar_tags:
                    doc.problem(packed, f"tag `{short_tag(tag)}` is not allowed; only the YAML core tags are "
                                        f"({ALLOWED_TAGS_TEXT})")
                    tag = str_tag
                if frame is not None and frame.is_map and frame.key is no_key:  # a key: always a string
                    frame.key = _MERGE_KEY if value == "<<" and tag is None and event.implicit[0] else value
                    frame.key_mark = packed
                    continue
                if tag is None:
                    tag = str_tag
                    if event.implicit[0]:
                        resolvers = implicit_get(value[:1])
                        if resolvers is not None:
                            for candidate, regexp in resolvers:
                                if regexp.match(value):
                                    tag = candidate
                                    break
                if tag is not str_tag:
                    text = value
                    try:
                        value = construct_scalar(tag, value)
                    except ValueError:
                        # the value is not repeated: it might be a secret written where it does not belong
                        doc.problem(packed, f"this value cannot be read as {short_tag(tag)}" if event.tag is not None
                                    else "this number has too many digits to be read")
                    else:
                        if (tag == int_tag or tag == float_tag) and number_problem(tag, text, value) is not None:
                            # not finite, or not a plain decimal (octal, hex, base 60, `_`): no field wants it
                            hide = _secret_place(stack)
                            doc.problem(packed, _where(stack) + str(number_problem(tag, text, value, hide_value=hide)))
                if event.anchor is not None:
                    doc.anchors[event.anchor] = (value, 1, 0)
                if frame is not None and frame.is_map:
                    key = frame.key
                    if key.__class__ is str and key not in frame.container:  # the common case of attach(), inline
                        frame.key = no_key
                        frame.container[key] = value
                        frame.kmarks[key] = frame.key_mark
                        frame.vmarks[key] = packed
                        continue
                doc.attach(value, packed, 0)
            elif kind is mapping_start:
                doc.start(event, True)  # type: ignore[union-attr]
            elif kind is mapping_end or kind is sequence_end:
                doc.end()  # type: ignore[union-attr]
            elif kind is sequence_start:
                doc.start(event, False)  # type: ignore[union-attr]
            elif kind is alias_event:
                doc.alias(event)  # type: ignore[union-attr]
            elif kind is document_start:
                doc = _DocumentState(file, problems)
                skipping = False
            elif kind is document_end:
                if doc is not None and not skipping and doc.root is not None:
                    yield YamlDocument(file, index, doc.root, doc.root_mark, doc.marks, doc.had_problem)
                index += 1
                doc = None
                skipping = False
            elif kind is stream_end or event is None:
                return
        except _Abort:
            skipping = True

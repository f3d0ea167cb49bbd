"""The files ``reconcile import`` writes: where each resource goes, its YAML, a check of the whole result
with the loader before anything is written, and writing that never leaves ``--out``.

Layout, one resource per file (an editor's ``$schema`` comment applies to a whole file, so one file holds
one kind): ``packages/NAME.yaml`` (its file in ``packages/files/``), ``campaigns/NAME.yaml``,
``assignments/NAME.yaml``. Every path is made of those folder names and resource names, which hold only
``a-z``, ``0-9`` and ``-`` (``import_names``): no backend text can reach a path.
"""

from __future__ import annotations

import os
import stat
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from reconciler.diagnostics import Severity
from reconciler.escape import escape
from reconciler.load import load_desired_state
from reconciler.load.schema_check import SCHEMA_FILES, schema_for
from reconciler.model import Kind

FOLDERS = {Kind.BACKEND: "backends", Kind.PACKAGE: "packages", Kind.CAMPAIGN: "campaigns",
           Kind.GATEWAY_ASSIGNMENT: "assignments", Kind.SCHEDULE: "schedules"}
ATTACHMENTS = "files"
PLACEHOLDER_SUFFIX = ".placeholder"
YAML_WIDTH = 110
MAX_PROBLEMS_SHOWN = 5


@dataclass(frozen=True)
class PlannedFile:
    """One file to write, ``path`` relative to ``--out``; ``resource`` ("Kind/name") for a YAML file."""

    path: PurePosixPath
    content: bytes
    resource: str = ""
    summary: str = ""
    placeholder: bool = False


def printable(text: str) -> str:
    """``text`` on one line with every control character escaped (``escape``), and any lone surrogate (which
    UTF-8 cannot encode) as ``\\udxxx``: safe in a comment and on a terminal."""
    return escape(text).encode("utf-8", "backslashreplace").decode("utf-8")


def document_path(kind: Kind, name: str) -> PurePosixPath:
    return PurePosixPath(FOLDERS[kind], f"{name}.yaml")


def attachment_path(kind: Kind, name: str, *, placeholder: bool, suffix: str) -> PurePosixPath:
    """``packages/files/NAME.placeholder``, or NAME with the exporter's suffix when it is letters and digits."""
    if placeholder:
        suffix = PLACEHOLDER_SUFFIX
    elif not (suffix[:1] == "." and suffix[1:].isascii() and suffix[1:].isalnum() and len(suffix) <= 17):
        suffix = ""
    return PurePosixPath(FOLDERS[kind], ATTACHMENTS, f"{name}{suffix}")


def schema_reference(kind: Kind, yaml_file: Path, root: Path) -> str:
    """What the ``$schema`` comment points at: the repository's own ``schemas/`` copy when it has one (as in
    the examples), else the schema's ``$id``."""
    local = root / "schemas" / SCHEMA_FILES[kind]
    if local.is_file():
        return Path(os.path.relpath(local, yaml_file.parent)).as_posix()
    return str(schema_for(kind)["$id"])


class _FlowMapping(dict[str, Any]):
    """A mapping written on one line (``{id: x, ...}``)."""


class _FlowList(list[Any]):
    """A list written on one line, wrapped at the width (``[a, b, ...]``)."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """PyYAML's safe dumper (libyaml's emitter: five times faster), writing ``_FlowMapping`` and ``_FlowList``
    in flow style."""


_Dumper.add_representer(_FlowMapping, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True))
_Dumper.add_representer(_FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def _flow(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _FlowMapping({key: _flow(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return _FlowList(_flow(item) for item in value)
    return value


def render_document(kind: Kind, name: str, spec: Mapping[str, Any], comments: Sequence[str], schema: str) -> bytes:
    """One YAML document: the editors' comment, the importer's comments (escaped: a backend's text can add no
    line), then the resource as in the examples: ``metadata`` and every list or mapping inside ``spec`` on
    one line, ``spec`` itself one field a line."""
    lines = [f"# yaml-language-server: $schema={schema}", "#"]
    for comment in comments:
        lines += [f"# {line}" for line in textwrap.wrap(printable(comment), width=YAML_WIDTH - 2)]
    document = {"apiVersion": "reconciler/v1", "kind": kind.value, "metadata": _flow({"name": name}),
                "spec": {key: _flow(value) for key, value in spec.items()}}
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
                     width=YAML_WIDTH)
    return ("\n".join(lines) + "\n" + body).encode("utf-8")


def out_problem(out: Path, root: Path, *, force: bool) -> str:
    """Why ``--out`` cannot be written to ('' when it can): it must be a folder (or not exist yet) inside the
    repository root, empty unless ``force``."""
    real_root = os.path.realpath(root)
    real_out = os.path.realpath(out)
    if not (real_out == real_root or real_out.startswith(real_root.rstrip(os.sep) + os.sep)):
        return (f"--out {escape(str(out))} is outside the repository root {escape(str(root))}: the files it gets "
                "refer to each other inside the repository")
    if not os.path.lexists(out):
        return ""
    if not out.is_dir():
        return f"--out {escape(str(out))} exists and is not a folder"
    try:
        empty = next(os.scandir(out), None) is None
    except OSError as exc:
        return f"--out {escape(str(out))} cannot be read: {exc.strerror or exc}"
    if not empty and not force:
        return (f"--out {escape(str(out))} is not empty: give an empty or new folder, or --force to write into it "
                "(files of the same name are replaced)")
    return ""


def validation_problems(files: Sequence[PlannedFile], *, out: Path, declared: Sequence[Path],
                        root: Path) -> list[str]:
    """Load the declared files and the planned ones together, as they will be; the errors, if any (with the
    planned files' paths as under ``out``). A declared file that a planned one replaces is left out."""
    targets = {os.path.realpath(out / f.path) for f in files}
    kept = [p for p in declared if os.path.realpath(p) not in targets]
    with tempfile.TemporaryDirectory(prefix="reconcile-import-") as tmp:
        staged = Path(tmp) / "out"
        for planned in files:
            target = staged / planned.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(planned.content)
        # the staged files reach only each other: any root holding both trees checks them as in place
        check_root = Path(os.path.commonpath([os.path.realpath(root), os.path.realpath(tmp)]))
        result = load_desired_state([*kept, staged], root=check_root)
        errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
        return [d.format().replace(str(staged), str(out)) for d in errors[:MAX_PROBLEMS_SHOWN]] + (
            [f"... and {len(errors) - MAX_PROBLEMS_SHOWN} more"] if len(errors) > MAX_PROBLEMS_SHOWN else [])


def unsafe_folder(out: Path, files: Sequence[PlannedFile]) -> str:
    """A folder under ``out`` that a planned file would be written through and that is not a plain folder
    (a symlink could lead out of ``out``); '' when there is none."""
    for planned in files:
        folder = out
        for part in planned.path.parent.parts:
            folder = folder / part
            try:
                mode = os.lstat(folder).st_mode
            except FileNotFoundError:
                break
            if not stat.S_ISDIR(mode):
                return str(folder)
    return ""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_files(out: Path, files: Sequence[PlannedFile]) -> list[Path]:
    """Write every file under ``out`` (each through a temporary file and a rename, so none is ever half
    written); the paths written. Raises ``OSError`` when the disk refuses."""
    written: list[Path] = []
    mode = 0o666 & ~_umask()  # as an ordinary file would be, not mkstemp's 0600
    for planned in files:
        target = out / planned.path
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(planned.content)
            os.chmod(temporary, mode)
            os.replace(temporary, target)  # replaces a symlink itself, never what it points at
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append(target)
    return written

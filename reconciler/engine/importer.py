"""``reconcile import``: declarations for what the declared backends have and git does not declare, recorded
as adopted, so that a plan of the result has nothing to do (Terraform's ``import`` blocks with
``-generate-config-out``).

Steps: load PATH; take the writer lease (not for a dry run); read each declared backend that has an exporter
with its Reader and let the exporter turn what is not declared into resources (``protocol.Exporter``); name
them (``import_names``: an object matched by name keeps it or is skipped, saying why) and render them
(``import_files``); load the declared files together with the new ones, and stop if that finds an error (a
file that would not validate is a bug: nothing is written); write them under ``--out``; record the
adoptions in the inventory. Any backend that cannot be read stops the import before anything is written: a
partial import would look complete. The files come first and the inventory after: an object recorded as
adopted but declared nowhere would look removed from git, and ``--prune`` would stop it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from reconciler.backends.protocol import ConnectContext, Exporter, exporter_for
from reconciler.backends.registry import adapter_for
from reconciler.backends.sessions import BackendSessions
from reconciler.diagnostics import Severity
from reconciler.engine.connect import connect
from reconciler.engine.import_files import (
    PlannedFile,
    out_problem,
    unsafe_folder,
    validation_problems,
    write_files,
)
from reconciler.engine.import_layout import Exported, lay_out
from reconciler.engine.observe import observe_all
from reconciler.engine.store_access import open_writer
from reconciler.errors import BackendError, ReconcilerError, StateStoreError
from reconciler.escape import escape
from reconciler.load import load_desired_state
from reconciler.load.declared import Report
from reconciler.load.loader import find_yaml_files
from reconciler.model import DesiredState
from reconciler.secrets import Redactor
from reconciler.state.store import InventoryEntry, Store, StoreView, open_store


@dataclass(frozen=True)
class ImportRequest:
    paths: Sequence[Path]
    out: Path
    root: Path | None = None
    state_url: str | None = None  # None: record nothing
    dry_run: bool = False
    force: bool = False
    lock_timeout: float = 0.0


@dataclass(frozen=True)
class ImportReport:
    """What an import found and did. ``errors`` non-empty: nothing was written (unless ``written`` says)."""

    files: tuple[PlannedFile, ...] = ()
    backends: tuple[str, ...] = ()  # one line per declared backend: what it had to import
    skipped: tuple[str, ...] = ()  # one line per object not imported, saying why
    adopted: int = 0  # inventory entries recorded
    errors: tuple[str, ...] = ()
    written: tuple[Path, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


async def run_import(request: ImportRequest, *, environ: Mapping[str, str], redactor: Redactor) -> ImportReport:
    """The whole import; never raises for an expected failure (it comes back in ``errors``)."""
    loaded = load_desired_state(list(request.paths), root=request.root)
    if loaded.desired is None:
        return ImportReport(errors=tuple(d.format() for d in loaded.diagnostics if d.severity is Severity.ERROR))
    desired = loaded.desired
    root = Path(desired.root)
    problem = out_problem(request.out, root, force=request.force)
    if problem:
        return ImportReport(errors=(problem,))
    try:
        store = _open_store(request)
    except StateStoreError as exc:
        return ImportReport(errors=(redactor.scrub(str(exc)),))
    try:
        return await _import(request, desired, store, ConnectContext(root=root, environ=environ, redactor=redactor))
    finally:
        if store is not None:
            store.close()


def _open_store(request: ImportRequest) -> Store | None:
    """The writer's store, its lease held for the whole import; for a dry run the store as it is, if any
    (its inventory only: nothing is recorded)."""
    if request.state_url is None:
        return None
    if request.dry_run:
        return open_store(request.state_url, base_dir=Path("."), writer=False)
    return open_writer(request.state_url, base_dir=Path("."), command="reconcile import",
                       lock_timeout=request.lock_timeout)


async def _import(request: ImportRequest, desired: DesiredState, store: Store | None,
                  ctx: ConnectContext) -> ImportReport:
    root = Path(desired.root)
    found = await export_all(desired, ctx)
    if found.errors:
        return ImportReport(errors=tuple(found.errors) + ("nothing was written",))
    inventory = store.state.view() if store is not None else StoreView(available=False)
    layout = lay_out(found, desired, out=request.out, root=root, inventory=inventory)
    report = ImportReport(files=layout.files, backends=layout.backends, skipped=layout.skipped)
    problems = _problems(request, layout.files, root)
    if problems:
        return replace(report, errors=problems)
    if request.dry_run or not layout.files:
        return report
    try:
        written = tuple(write_files(request.out, layout.files))
    except OSError as exc:
        return replace(report, errors=(f"cannot write under {escape(str(request.out))}: {exc.strerror or exc}; "
                                       "the files written so far are not recorded as adopted",))
    try:
        adopted = record_adoptions(store, layout.adoptions)
    except StateStoreError as exc:
        return replace(report, written=written, errors=(
            f"the files were written but not recorded as adopted ({ctx.redactor.scrub(str(exc))}): a plan shows "
            "them as `~ adopt`; apply with --adopt once they are reviewed",))
    return replace(report, written=written, adopted=adopted)


def _problems(request: ImportRequest, files: Sequence[PlannedFile], root: Path) -> tuple[str, ...]:
    """Why the files must not be written: they do not validate together with the declared ones (a bug), or
    a folder under ``--out`` could lead elsewhere."""
    problems = validation_problems(files, out=request.out, declared=declared_files(request.paths, root), root=root)
    if problems:
        return ("the files to import do not validate, which is a bug in `reconcile import`; nothing was written:",
                *problems)
    unsafe = unsafe_folder(request.out, files)
    if unsafe:
        return (f"{escape(unsafe)} is not a plain folder (a symlink could lead out of --out); nothing was written",)
    return ()


async def export_all(desired: DesiredState, ctx: ConnectContext) -> Exported:
    """Read every declared backend that has an exporter, then export each, in name order."""
    found = Exported()
    exporters: dict[str, Exporter] = {}
    sessions = BackendSessions()  # a backend's reader and exporter share one client (and one login)
    ctx = replace(ctx, sessions=sessions)
    try:
        for name in sorted(desired.backends):
            spec = desired.backends[name]
            try:
                exporter = exporter_for(adapter_for(spec.type), spec, ctx)
            except ReconcilerError as exc:
                found.errors.append(f"backend {name}: {ctx.redactor.scrub(str(exc))}")
                continue
            if exporter is None:
                found.silent[name] = f"a {spec.type} backend lists no campaigns or packages: nothing to import"
            else:
                exporters[name] = exporter
        if exporters and not found.errors:
            await _export(desired, ctx, exporters, found)
    finally:
        for exporter in exporters.values():
            await exporter.aclose()
        await sessions.aclose()
    return found


async def _export(desired: DesiredState, ctx: ConnectContext, exporters: Mapping[str, Exporter],
                  found: Exported) -> None:
    conns = connect(desired.only_backends(exporters), ctx, with_writers=False)
    try:
        found.errors += [d.message for d in conns.diagnostics]
        if found.errors:
            return
        observed = await observe_all(conns.readers, desired, redactor=ctx.redactor)
        for name in sorted(exporters):
            observation = observed.backends[name]
            if not observation.readable:
                found.errors.append(f"backend {name} could not be read: {ctx.redactor.scrub(observation.error)}")
        for name in sorted(exporters) if not found.errors else ():
            try:
                found.results[name] = await exporters[name].export(desired, observed.backends[name])
            except BackendError as exc:
                found.errors.append(f"backend {name} could not be read: {ctx.redactor.scrub(str(exc))}")
    finally:
        await conns.aclose()


def declared_files(paths: Sequence[Path], root: Path) -> list[Path]:
    """The YAML files the loader reads for ``paths`` (as it finds them)."""
    return [path for _, path in find_yaml_files(list(paths) or [Path("campaigns.d")], Report(), root=root)]


def record_adoptions(store: Store | None, adoptions: Sequence[InventoryEntry]) -> int:
    """Record the adoptions in the inventory (under the writer lease, in one transaction); how many."""
    if store is None:
        return 0
    store.state.record_all_created(adoptions)
    return len(adoptions)

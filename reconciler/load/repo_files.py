"""Files named in YAML: resolved against the naming file's directory, kept inside the repository root.

A package, a recipient list, a gateway list, a CA file or a secret file must be a regular file that
stays inside the root after symlinks are followed: YAML from a pull request must not be able to make
the reconciler read (or upload) ``/etc/passwd`` or a file outside the checkout.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


def choose_root(paths: Sequence[Path], root: Path | None) -> Path:
    """``root`` if given; else the nearest ancestor of the first path holding ``.git``; else that path
    (its parent when it is a file)."""
    if root is not None:
        return Path(os.path.abspath(root))
    first = Path(os.path.abspath(paths[0] if paths else Path("campaigns.d")))
    start = first if first.is_dir() else first.parent
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return start


@dataclass(frozen=True)
class RepoFile:
    """A file named in YAML, checked."""

    real: Path  # where it is on disk, symlinks resolved
    display: str  # the path as the user sees it (relative to the working directory when they gave one)
    relative: str  # POSIX path relative to the repository root: what the model stores


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def resolve_repo_file(raw: str, *, yaml_file: Path, yaml_display: str, root: Path) -> RepoFile | str:
    """Check the file ``raw`` named in ``yaml_file``; return it, or a message saying what is wrong."""
    if "\x00" in raw:
        return "file path contains a NUL character"
    if os.path.isabs(raw) or raw.startswith("~"):
        return f"file path `{raw}` must be relative (to the directory of this YAML file), not absolute"
    root_abs = os.path.abspath(root)
    root_real = os.path.realpath(root)
    joined = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(yaml_file)), raw))
    real = os.path.realpath(joined)
    if not _inside(real, root_real):
        if not _inside(joined, root_abs) and not _inside(joined, root_real):
            return f"file path `{raw}` leaves the repository root {root_abs} (through `..`)"
        return f"file path `{raw}` leads outside the repository root {root_abs} through a symlink"
    display = os.path.normpath(os.path.join(os.path.dirname(yaml_display), raw))
    try:
        info = os.stat(real)
    except FileNotFoundError:
        return f"file `{raw}` does not exist (looked for {display})"
    except OSError as exc:
        return f"file `{raw}` cannot be read: {exc.strerror or exc.__class__.__name__}"
    if not stat.S_ISREG(info.st_mode):
        return f"`{raw}` is not a regular file (looked at {display})"
    try:  # unreadable is not absent: say so now, not halfway through an apply
        with open(real, "rb"):
            pass
    except OSError as exc:
        return f"file `{raw}` cannot be read: {exc.strerror or exc.__class__.__name__} (looked at {display})"
    base = root_abs if _inside(joined, root_abs) else root_real
    relative = PurePosixPath(*Path(os.path.relpath(joined, base)).parts).as_posix()
    return RepoFile(Path(real), display, relative)


def sha256_of(path: Path, *, chunk: int = 1 << 20) -> tuple[str, int]:
    """Content hash and size, read in chunks (packages can be large)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size

"""A git repository as the source of declarations: a checkout under ``.reconciler/`` kept at the newest
commit of one branch. Works with any URL git understands, local paths included."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from reconciler.errors import ReconcilerError


class GitSourceError(ReconcilerError):
    """git could not clone or fetch (the daemon keeps the last checkout and says so)."""


class GitSource:
    def __init__(self, url: str, branch: str, base_dir: Path) -> None:
        self.url = url
        self.branch = branch
        digest = hashlib.sha256(f"{url}#{branch}".encode()).hexdigest()[:12]
        self.checkout = base_dir / "git" / digest
        self.revision = ""

    async def _git(self, *args: str, cwd: Path | None = None) -> str:
        process = await asyncio.create_subprocess_exec(
            "git", *args, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/local/bin:/usr/bin:/bin"})
        out, err = await process.communicate()
        if process.returncode != 0:
            raise GitSourceError(f"git {args[0]} failed: {err.decode(errors='replace').strip()[:300]}")
        return out.decode().strip()

    async def sync(self) -> str:
        """Bring the checkout to the branch's newest commit and return its revision."""
        if not (self.checkout / ".git").exists():
            self.checkout.parent.mkdir(parents=True, exist_ok=True)
            await self._git("clone", "--quiet", "--branch", self.branch, "--single-branch", self.url,
                            str(self.checkout))
        else:
            await self._git("fetch", "--quiet", "origin", self.branch, cwd=self.checkout)
            await self._git("reset", "--quiet", "--hard", "FETCH_HEAD", cwd=self.checkout)
        self.revision = await self._git("rev-parse", "HEAD", cwd=self.checkout)
        return self.revision

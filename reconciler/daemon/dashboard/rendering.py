"""Pages as HTML: Jinja2 templates (autoescaped) over the view-models, no I/O.

Every value a template prints goes through ``finalize``: secrets the daemon knows are scrubbed and phone
numbers masked there, once for every page and event, so no view or template can forget to. A page is
its ``<main>`` fragment (what the event stream sends) inside the shell (``base.html``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from reconciler.daemon.dashboard.assets import Assets
from reconciler.daemon.dashboard.campaign_views import campaign_page
from reconciler.masking import mask_numbers_in
from reconciler.daemon.dashboard.snapshot import DaemonSnapshot
from reconciler.daemon.dashboard.views import clock, history_page, overview

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class View:
    """Which page: ``overview``, ``history`` or ``campaign`` (with its ``name``)."""

    page: str
    name: str = ""

    @property
    def path(self) -> str:
        return {"overview": "/", "history": "/history"}.get(self.page) or f"/campaigns/{quote(self.name, safe='')}"

    @property
    def stream(self) -> str:
        return "/events" + ("/overview" if self.page == "overview" else self.path)

    @property
    def title(self) -> str:
        return {"overview": "Overview", "history": "History"}.get(self.page) or self.name


def environment(clean: Callable[[str], str]) -> Environment:
    def finalize(value: object) -> object:
        if isinstance(value, str) and not isinstance(value, Markup):
            return clean(value)
        return value

    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True,
                                                                                        default_for_string=True),
                       finalize=finalize, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def masking_only(text: str) -> str:
    return mask_numbers_in(text)


class Pages:
    """Renders the dashboard's pages from a snapshot; ``clean`` scrubs secrets and masks numbers."""

    def __init__(self, clean: Callable[[str], str] = masking_only, *, assets: Assets | None = None) -> None:
        self.env = environment(clean)
        self.env.globals["asset"] = (assets or Assets()).url

    def fragment(self, snapshot: DaemonSnapshot, view: View) -> tuple[str, bool]:
        """The page's ``<main>`` content, and whether the page exists (an undeclared campaign does not)."""
        if view.page == "overview":
            return self.env.get_template("overview_main.html").render(o=overview(snapshot)), True
        if view.page == "history":
            return self.env.get_template("history_main.html").render(h=history_page(snapshot)), True
        model = campaign_page(snapshot, view.name)
        if model is None:
            return self.env.get_template("missing_main.html").render(name=view.name,
                                                                     as_of=clock(snapshot.taken_at)), False
        return self.env.get_template("campaign_main.html").render(p=model), True

    def page(self, snapshot: DaemonSnapshot, view: View) -> tuple[str, bool]:
        main, found = self.fragment(snapshot, view)
        return self.shell(view, main), found

    def shell(self, view: View, main: str) -> str:
        return self.env.get_template("base.html").render(title=view.title, page=view.page, stream=view.stream,
                                                         main=Markup(main))

    def login(self, *, next_path: str, failed: bool) -> str:
        return self.env.get_template("login.html").render(next=next_path, failed=failed)

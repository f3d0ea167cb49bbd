"""The ``Notification`` kind: checks the schema cannot express, its references, and its model.

A Notification names where events go (``url``: plain, or a secret reference when the URL is itself a
credential, as a Slack incoming webhook is), how they are signed (``signingSecret``: a reference) and
which campaigns it follows. The checks here run in the loader's usual order: per document (secret files
exist inside the root; no credentials written into a plain URL), then across documents (every campaign
it names is declared). The model is built only from a load without errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from reconciler.model import Kind, NotificationEvent, NotificationFormat, NotificationSpec
from reconciler.secrets import SecretRef

if TYPE_CHECKING:  # the checks below are called from these modules
    from reconciler.load.declared import Declared, Report
    from reconciler.load.references import Names
    from reconciler.load.rules import DocumentRules, Facts

URL_CREDENTIALS = ("spec.url: credentials in the URL are literal secrets; give the whole URL as a reference "
                   "instead (url: {env: NAME} or {file: PATH})")
#: fields that may hold a ``{file: PATH}`` secret reference
SECRET_FIELDS = ("url", "signingSecret")
DEFAULT_TIMEOUT_SECONDS = 10.0


def check_notification(rules: DocumentRules, item: Declared) -> None:
    """Secret files named by ``url`` or ``signingSecret`` exist inside the root; a plain URL carries no
    ``user:password@``."""
    url = item.get("spec", "url")
    if isinstance(url, str) and "@" in urlsplit(url).netloc:
        rules.report.error(item, ("spec", "url"), URL_CREDENTIALS)
    for field in SECRET_FIELDS:
        value = item.get("spec", field)
        if isinstance(value, dict) and "file" in value:
            rules.repo_file(item, ("spec", field, "file"))


def check_notification_references(item: Declared, names: Names, report: Report) -> None:
    """Every campaign in ``spec.campaigns`` is declared (a typo would silently filter everything out)."""
    del report  # ``names`` reports an unknown name with what is declared
    campaigns = item.get("spec", "campaigns")
    for index, _ in enumerate(campaigns if isinstance(campaigns, list) else ()):
        names.resolve(item, ("spec", "campaigns", index), Kind.CAMPAIGN)


def build_notification(item: Declared, facts: Facts) -> NotificationSpec:
    """The model of a Notification that passed every check."""
    spec = item.spec
    secret = spec.get("signingSecret")
    return NotificationSpec(
        name=item.name or "",
        url=_secret_or_text(item, facts, "url", spec["url"]),
        events=frozenset(NotificationEvent(e) for e in spec["events"]),
        format=NotificationFormat(spec.get("format", "json")),
        signing_secret=_reference(item, facts, "signingSecret", secret) if secret is not None else None,
        campaigns=frozenset(spec.get("campaigns", ())),
        timeout_seconds=float(spec.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS)),
        source=item.source(),
    )


def _secret_or_text(item: Declared, facts: Facts, field: str, value: Any) -> str | SecretRef:
    return _reference(item, facts, field, value) if isinstance(value, dict) else str(value)


def _reference(item: Declared, facts: Facts, field: str, value: dict[str, Any]) -> SecretRef:
    if "env" in value:
        return SecretRef(env=value["env"])
    return SecretRef(file=facts.files[(item, ("spec", field, "file"))].relative)

"""The one exception tree of campaign-reconciler.

Expected failures travel as values (``Diagnostic``, ``Outcome``); these exceptions exist for the
boundaries where a value cannot be returned yet: an adapter translates every httpx / parse failure
into one of them with ``raise ... from exc``, and the executor turns each into an ``Outcome``.

    ReconcilerError
    ├── SecretError                   a secret reference cannot be resolved
    ├── StateStoreError               the state store cannot be opened, read or written
    └── BackendError                  anything a backend call can end in
        ├── TemporaryBackendError     worth trying again later (retry_after in seconds, if known)
        │   ├── BackendUnavailableError   nothing reached the server (refused, DNS, connect timeout)
        │   └── MalformedReplyError   the reply could not be parsed
        ├── UnknownOutcomeError       a non-idempotent request may or may not have taken effect
        ├── AuthError                 credentials refused, token expired, permission missing, bad signature
        └── PermanentBackendError     the backend refused the request; retrying will not help
            ├── NotFoundError
            ├── ConflictError         refused in the object's current state (e.g. edit while started)
            └── ReplyLimitError       a reply or a paged listing went over one of the Backend's ``limits``
"""

from __future__ import annotations


class ReconcilerError(Exception):
    """Base of every error the reconciler raises on purpose."""


class SecretError(ReconcilerError):
    """A ``{env: ...}`` or ``{file: ...}`` reference could not be resolved (the value is never shown)."""


class StateStoreError(ReconcilerError):
    """The state store could not be opened, read or written."""


class BackendError(ReconcilerError):
    """A backend call failed; ``backend`` and ``operation`` say which call, ``status`` the HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        backend: str = "",
        operation: str = "",
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.backend = backend
        self.operation = operation
        self.status = status
        self.code = code

    def __str__(self) -> str:
        where = " ".join(part for part in (self.backend, self.operation) if part)
        return f"{where}: {self.message}" if where else self.message


class TemporaryBackendError(BackendError):
    """Worth retrying: 5xx, 429, a dropped connection on an idempotent call, a malformed reply."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        not_processed: bool = False,
        **kwargs: object,
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after
        #: True when the backend said it did not act on the request (429, 503, "no port free"), so
        #: even a non-idempotent request may be sent again.
        self.not_processed = not_processed


class BackendUnavailableError(TemporaryBackendError):
    """The request provably never reached the server (connection refused, DNS, connect timeout)."""


class MalformedReplyError(TemporaryBackendError):
    """The backend answered something that is not the documented format."""


class UnknownOutcomeError(BackendError):
    """A non-idempotent request left and no reply came back: it may have taken effect.

    Never retried blindly. SMS sends record such a message as ``unknown`` in the send ledger; other
    actions are resolved by observing the backend again on the next pass.
    """


class AuthError(BackendError):
    """Credentials refused (401), permission missing (403), token expired, or a bad signature."""


class PermanentBackendError(BackendError):
    """The backend refused the request as such (4xx, or an error code in the body)."""


class NotFoundError(PermanentBackendError):
    """The object the request names does not exist."""


class ConflictError(PermanentBackendError):
    """The request is not allowed in the object's current state."""


class ReplyLimitError(PermanentBackendError):
    """A reply went over one of the backend's bounds while it was being read (header bytes or lines, body
    bytes, decoded bytes or compression ratio), or a paged listing over its page or item bound. The
    message names the ``limits`` field to raise. Not retried: the same request would get the same reply.
    """

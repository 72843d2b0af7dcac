"""Domain errors raised by services; views show them as messages, the API as a 400 body
(403 for a permission refusal, 409 for a conflict with another run's work, 413 for an upload
over the limit)."""

from __future__ import annotations


class ApplicationError(Exception):
    """A refusal the user can act on: what went wrong and where."""

    def __init__(self, message: str, *, field: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}


class PermissionDeniedError(ApplicationError):
    """The user's role does not allow the action."""


class ConflictError(ApplicationError):
    """The action collides with another run's work (a table being written, a later run in
    the way, records being re-processed): the API answers 409 with the same text."""


class TooLargeError(ApplicationError):
    """An upload over the configured size limit: the page and the API answer 413."""

"""The error tree: every error this package raises on purpose derives from DatafyError."""

from __future__ import annotations


class DatafyError(Exception):
    """Base of every deliberate redis-datafy error."""


class ConfigurationError(DatafyError):
    """A setting is missing or invalid; the process must not start."""


class StoreUnavailableError(DatafyError):
    """Redis cannot take the operation now (down, loading, out of memory); the caller may retry."""


class ApiError(DatafyError):
    """An HTTP error reply: status, a stable machine code, a human message and the field at fault."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after  # seconds, sent as the Retry-After header

    def to_json(self) -> dict[str, object]:
        """The error body every client sees."""
        return {"success": False, "error": {"code": self.code, "message": self.message, "field": self.field}}

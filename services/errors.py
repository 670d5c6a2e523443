"""Domain errors. Services raise these; api/errors.py maps them to HTTP statuses and
WebSocket close codes in one place. Each has a stable snake_case `code`."""


class DomainError(Exception):
    code = "error"

    def __init__(self, detail: str, *, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code


class NotFound(DomainError):
    code = "not_found"


class Unauthorized(DomainError):
    code = "not_authenticated"


class Forbidden(DomainError):
    code = "forbidden"


class Conflict(DomainError):
    code = "conflict"


class InvalidInput(DomainError):
    code = "invalid_input"


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(
        self,
        detail: str,
        *,
        retry_after: float = 1.0,
        code: str | None = None,
        limit: int | None = None,
        remaining: int = 0,
    ):
        super().__init__(detail, code=code)
        self.retry_after = retry_after
        self.limit = limit  # the bound that was hit, when there is one to report
        self.remaining = remaining


class ProviderError(DomainError):
    """An upstream model failed. `retryable` says whether trying again may help."""

    code = "provider_error"

    def __init__(self, detail: str, *, code: str | None = None, retryable: bool = False, status: int | None = None):
        super().__init__(detail, code=code)
        self.retryable = retryable
        self.status = status


class Unavailable(DomainError):
    code = "service_unavailable"


class DatabaseUnavailable(Unavailable):
    """The database connection was lost (twice in a row on PostgreSQL, which `Database.run`
    retries once) or SQLite could not write (locked past its timeout, an I/O error): nothing
    of the unit was stored, and the client may retry."""

    code = "database_unavailable"


class StorageConflict(Conflict):
    """A write the database refused for a constraint (a row that appeared or vanished
    meanwhile) that the store could not explain as a duplicate send."""

    code = "storage_conflict"

"""The two ways a store operation fails that a caller must tell apart: the database, or the correction."""

from __future__ import annotations


class StoreUnavailable(RuntimeError):
    """The database cannot be reached or cannot take the write now; retry after `retry_after` seconds.

    Raised for every driver-level failure (refused connection, timeout, server gone, SQLite file locked past
    its busy timeout), so the HTTP layer maps one exception type to 503 + Retry-After. The message names
    the backend, never the password of its URL, and never a correction's contents.
    """

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidCorrection(ValueError):
    """A correction that does not fit the model; `index` and `tag` name the first offending token, if any."""

    def __init__(self, reason: str, index: int | None = None, tag: str | None = None) -> None:
        where = f"token {index}" + (f" (tag {tag!r})" if tag is not None else "") + ": " if index is not None else ""
        super().__init__(where + reason)
        self.reason = reason
        self.index = index
        self.tag = tag


class WrongReviewItem(InvalidCorrection):
    """A correction names a review item of another model.

    One that is no longer queued (retention deleted it, or a purge) is accepted: a person's correction is
    worth keeping after its queue entry expired.
    """

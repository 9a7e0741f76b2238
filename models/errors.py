"""Expected failures as values: a stable code and one sentence a user can act on."""
from __future__ import annotations


class InputError(Exception):
    """Bad input, not a bug: the document ends ``failed`` with ``message`` as its error."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# Stable codes (the message says what is wrong and what to do).
EMPTY = "empty_file"
BINARY = "not_text"
UNSUPPORTED = "unsupported_type"
TOO_LARGE = "too_large"
NOT_A_REPORT = "not_a_report"
NO_TABLES = "no_tables"
ENCRYPTED = "encrypted"
CORRUPT = "corrupt"
TIMEOUT = "timeout"

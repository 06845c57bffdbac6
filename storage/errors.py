"""The one error the webinar domain raises: a refused action with a status, a stable code and a sentence.

REST handlers render it as ``{"error": {"code", "message"}}`` with ``status``; the live protocol
answers ``rpc_error`` with the same code, so both paths refuse alike.
"""

from __future__ import annotations


class DomainError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid(field: str, message: str) -> DomainError:
    return DomainError(400, "invalid", f"{field}: {message}")


def not_found(what: str) -> DomainError:
    return DomainError(404, "not_found", f"no such {what}")


def forbidden(message: str = "only a host of this webinar may do that") -> DomainError:
    return DomainError(403, "forbidden", message)


def conflict(code: str, message: str) -> DomainError:
    return DomainError(409, code, message)

"""Field types used by more than one service's schemas."""

import re
from typing import Annotated, Any

import email_validator
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, StringConstraints

# Company directories live on internal domains (corp.local, intranet.lan); email-validator's documented
# way to accept them is to drop those names from its special-use list.
email_validator.SPECIAL_USE_DOMAIN_NAMES[:] = [
    d for d in email_validator.SPECIAL_USE_DOMAIN_NAMES if d not in {"local", "lan", "home.arpa", "internal", "test"}]


def _email(value: str) -> str:
    # Syntax only: no DNS look-ups from a request.
    try:
        return validate_email(value, check_deliverability=False, globally_deliverable=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None



# --- Text that is safe to store: one definition for every schema and query parameter -------------

# C0 controls other than tab, newline and carriage return, DEL, and lone surrogates (which no UTF-8
# encoder accepts). PostgreSQL refuses NUL in text outright; the rest have no place in user text.
_UNSAFE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def check_text(value: str) -> str:
    """`value` unchanged, or ValueError when it holds a control character or a lone surrogate."""
    if _UNSAFE_TEXT.search(value):
        raise ValueError("text must not contain control characters (other than tab and newline) "
                         "or unpaired surrogates")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


SafeStr = Annotated[str, AfterValidator(check_text)]
"""Any length; add `Field`/`Query(max_length=...)` or use SafeText(n)."""


def SafeText(max_length: int | Any, *, min_length: int = 0, blank: bool = True) -> Any:
    """A text type limited to `max_length`, or to the length of a column (`Person.display_name`).

    `blank=False` also refuses text that is only whitespace and strips what it accepts. Use it for
    request fields and query parameters alike: `name: SafeText(Group.name)`,
    `q: Annotated[SafeText(100) | None, Query()] = None`."""
    limit = max_length if isinstance(max_length, int) else column_length(max_length)
    validators = [AfterValidator(check_text)] + ([] if blank else [AfterValidator(_not_blank)])
    return Annotated[str, StringConstraints(min_length=max(min_length, 0 if blank else 1), max_length=limit),
                     *validators]


def column_length(column: Any) -> int:
    """The declared length of a String column (a model attribute or a Column)."""
    length = getattr(getattr(column, "type", None), "length", None)
    if not isinstance(length, int):
        raise TypeError(f"{column!r} is not a String column with a length")
    return length


EMAIL_MAX_LENGTH = 320  # RFC 5321 path limit; the size of every email column
Email = Annotated[str, StringConstraints(max_length=EMAIL_MAX_LENGTH), AfterValidator(check_text), AfterValidator(_email)]

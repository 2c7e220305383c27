"""Field types used by more than one service's schemas."""

from typing import Annotated

import email_validator
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator

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


Email = Annotated[str, AfterValidator(_email)]

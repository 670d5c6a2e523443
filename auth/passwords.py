"""Username normalisation and the password policy (NIST SP 800-63B, section 5.1.1.2).

No composition rules: a password is refused only when it is too short or long, blank, one
of the most common passwords (auth/common_passwords.txt), or nothing but the username.
Usernames are compared in NFKC + case-folded form, so `Ada`, `ada`, `ADA` and the
full-width `ａｄａ` are one account.

The list is the first 10,000 entries of eight or more characters of the `passwords`
frequency list in the zxcvbn package (4.5.0, MIT): `pip install --target /tmp/z zxcvbn`,
then take `zxcvbn.frequency_lists.FREQUENCY_LISTS["passwords"]`, case-fold, keep the
first 10,000 distinct entries of at least MIN_PASSWORD characters."""

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from models.schemas import is_blank

USERNAME_RE = re.compile(r"[A-Za-z0-9_.@-]{3,64}")
MAX_USERNAME = 64
MIN_PASSWORD = 8
MAX_PASSWORD = 256
COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")
# Input longer than this cannot name an account; it is cut before any normalising, hashing
# or counting, so an oversized name costs no more than a valid one.
_MAX_RAW_USERNAME = MAX_USERNAME * 4


class PolicyError(ValueError):
    """A username or password the policy refuses; `code` is the error's stable code
    (services/users.py raises it as the domain's InvalidInput)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def display_username(username: str) -> str:
    """The NFKC form a new account is stored under (what the user sees)."""
    return unicodedata.normalize("NFKC", username[:_MAX_RAW_USERNAME])


def normalize_username(username: str) -> str:
    """The key of an account: NFKC, then case-folded (casefold can re-compose, so NFKC again)."""
    return unicodedata.normalize("NFKC", display_username(username).casefold())


def check_username(username: str) -> str:
    """The display form of a valid new username, or PolicyError. A full match: `$` would
    also match before a trailing newline."""
    shown = display_username(username)
    if not USERNAME_RE.fullmatch(shown):
        raise PolicyError("username must be 3-64 characters of letters, digits and _ . @ -", "invalid_username")
    return shown


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    with COMMON_PASSWORDS.open(encoding="utf-8") as f:
        return frozenset(line.rstrip("\n") for line in f if line.strip() and not line.startswith("#"))


def check_password(password: str, username: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise PolicyError(f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters", "invalid_password")
    if is_blank(password):
        raise PolicyError("password must not be only whitespace", "invalid_password")
    folded = unicodedata.normalize("NFKC", password).casefold()
    if folded in common_passwords() or folded.strip() in common_passwords():
        raise PolicyError("this password is one of the most common ones; choose another", "common_password")
    name = normalize_username(username)
    if name and not "".join(folded.replace(name, "").split()):
        raise PolicyError("the password must not be the username", "password_is_username")

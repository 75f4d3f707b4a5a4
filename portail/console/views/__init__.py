"""The référent console, one module per part; every account, class and event is fetched through
scoping.py. URL names are in ../urls.py."""

from .access import PAGE_SIZE, SESSION_VERIFIED, console_view, enrol, regional_view, verify
from .accounts import (
    account,
    block,
    change_identifier,
    link,
    mask_email,
    new_code,
    rename,
    search,
    send_reset,
    single_letter,
    unblock,
    unlink,
)
from .duplicates import duplicates, ignore_duplicate, merge_duplicate
from .imports import import_csv, import_template
from .journal import audit_log
from .letters import _letters_selection, letters, letters_download, letters_ready
from .referents import appoint_referent, dismiss_referent, referents, structure_referents

__all__ = [
    "PAGE_SIZE",
    "SESSION_VERIFIED",
    "_letters_selection",
    "account",
    "appoint_referent",
    "audit_log",
    "block",
    "change_identifier",
    "console_view",
    "dismiss_referent",
    "duplicates",
    "enrol",
    "ignore_duplicate",
    "import_csv",
    "import_template",
    "letters",
    "letters_download",
    "letters_ready",
    "link",
    "mask_email",
    "merge_duplicate",
    "new_code",
    "referents",
    "regional_view",
    "rename",
    "search",
    "send_reset",
    "single_letter",
    "structure_referents",
    "unblock",
    "unlink",
    "verify",
]

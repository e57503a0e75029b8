"""Message-IDs: the same run and recipient always get the same one, so a resend is recognisable.

Kept apart from message building, since the state file records each recipient's Message-ID (and
VERP tag) when its run is created, long before the message is built: a row left in doubt names the
ID to look for.
"""

from __future__ import annotations

import base64
import hashlib
import secrets


def make_message_id(run_token: str, recipient_key: str, domain: str) -> str:
    """The same run and recipient always give the same Message-ID (so a resend is recognisable)."""
    digest = hashlib.sha256(f"{run_token}\0{recipient_key}".encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def recipient_ids(run_id: int, run_token: str, key: str, domain: str, *, verp: bool) -> tuple[str, str | None]:
    """A recipient's Message-ID, and its VERP tag when the run has a bounce address."""
    return make_message_id(run_token, key, domain), make_verp_tag(run_id, run_token, key) if verp else None


def make_verp_tag(run_id: int, run_token: str, recipient_key: str) -> str:
    """The tag of a VERP envelope sender (`bounces+TAG@domain`): the run, then 8 characters that
    only mailcast can compute (keyed by the run's secret token), so the address alone does not
    give it away. Only lower-case letters, digits and a hyphen: safe in any local part."""
    digest = hashlib.blake2b(recipient_key.encode(), digest_size=5, key=run_token.encode()).digest()
    return f"{run_id}-{base64.b32encode(digest).decode('ascii').lower()}"


def random_message_id(domain: str) -> str:
    """A Message-ID of its own, for a message (a test send) that must never be taken for an earlier one."""
    return f"<{secrets.token_hex(16)}@{domain}>"

"""The words for the states of runs and recipients and for why a pass stopped, defined once.

They are `Literal` types: mypy (strict, with strict equality) refuses a comparison with a word
that is not one of them, so a misspelt status is an error before it is a bug.

One state has had three names: a recipient whose message was handed over (or may have been)
without its reply being recorded. The state file and the README's status list call it
`sending`: the claim is committed as `sending` before the message leaves. While a process sends
it, it is in flight; once that process has stopped without recording a reply (a crash, a
connection lost after the whole message went out), it is **in doubt**, the word users read. In
code it is `IN_DOUBT`, and a transport that lost the reply reports `in_doubt`.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

RunStatus = Literal["sending", "paused", "completed", "cancelled", "failed"]
FINISHED: Final[tuple[RunStatus, ...]] = ("completed", "cancelled")

RecipientStatus = Literal[
    "pending", "sending", "sent", "deferred", "failed", "skipped", "suppressed", "bounced", "complained"
]
RECIPIENT_STATUSES: Final[tuple[RecipientStatus, ...]] = get_args(RecipientStatus)
IN_DOUBT: Final = "sending"
UNDELIVERED: Final[tuple[RecipientStatus, ...]] = ("failed", "skipped", "suppressed")
# Learnt after the server took the message, from a report read back from a mailbox (bounces import).
AFTERWARDS: Final[tuple[RecipientStatus, ...]] = ("bounced", "complained")

# Why a pass over a run stopped. From the state store's claim: `done` (nobody left to claim), `limit` (the
# day's allowance is used up), `paused` or `cancelled` (by hand, meanwhile). From the send loop:
# `limit-option` (send --limit), `interrupted` (a signal), `error`, `rejections` (the server rejected
# everyone alike), `unbuildable` (a row's message could not be built under strict validation).
StopReason = Literal[
    "done", "limit", "paused", "cancelled", "limit-option", "interrupted", "error", "rejections", "unbuildable"
]

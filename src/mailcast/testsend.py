"""`mailcast test`: one row's message sent to a few test addresses, recorded nowhere."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mailcast.campaign import Campaign
from mailcast.errors import Problem, UsageError
from mailcast.planning import password_for
from mailcast.settings import Settings
from mailcast.transports import Delivery, open_connection

MAX_TEST_ADDRESSES = 20


@dataclass(frozen=True)
class SendTestResult:
    """What each test address got; iterating gives (address, delivery) pairs."""

    row: int
    deliveries: list[tuple[str, Delivery]]
    # the other rows' problems (strict validation): the campaign cannot be sent until they are fixed
    warnings: tuple[Problem, ...] = ()

    def __iter__(self) -> Iterator[tuple[str, Delivery]]:
        return iter(self.deliveries)


def send_test(campaign: Campaign, settings: Settings, *, to: list[str], row: int | None = None) -> SendTestResult:
    """Send one row's message to a few test addresses; nothing is recorded as campaign progress.

    Like `preview`, it works on a good row while other rows have problems (they are the result's
    warnings); a bad row is refused with its problem.
    """
    from mailcast.addresses import check_address
    from mailcast.preview import PREVIEW_TOKEN, checked_composer, pick_recipient, row_warnings

    if not 1 <= len(to) <= MAX_TEST_ADDRESSES:
        raise UsageError(
            f"give between 1 and {MAX_TEST_ADDRESSES} test addresses (got {len(to)})",
            hint="Use --to once per address.",
        )
    problems = []
    for address in to:
        try:
            check_address(address)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise UsageError("; ".join(problems), hint="Fix the --to addresses.")
    now = settings.clock()
    report, composer = checked_composer(campaign, one_row=True)
    recipient = pick_recipient(report, row=row, email=None)
    connection = open_connection(
        campaign.transport,
        folder=campaign.folder,
        password=password_for(campaign, settings.env),
        ssl_context=settings.ssl_context,
        sleep=settings.sleep,
    )
    results = []
    try:
        for address in to:
            composed = composer.compose(
                values=recipient.values,
                email=recipient.email,
                run_token=f"{PREVIEW_TOKEN}:{address}",
                key=recipient.key,
                date=now,
                to=address,
                test=True,  # a Message-ID of its own, unsubscribe links that go nowhere
            )
            results.append((address, connection.send(campaign.sender_address, address, composed.data)))
    finally:
        connection.close()
    return SendTestResult(recipient.row, results, row_warnings(report))

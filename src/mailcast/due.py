"""run-due: for every campaign file under the given paths, start what is due and continue what waits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mailcast.campaign import Campaign, load_campaign
from mailcast.errors import ExitCode, MailcastError, UsageError
from mailcast.schedule import occurrences_due, schedule_zone
from mailcast.sending import SendOptions, SendOutcome, SendProgress, Settings, send_campaign
from mailcast.state import PAUSED_BY_HAND, StateStore

# Worst first: what a cron job's exit code should say when several runs were touched.
SEVERITY = (
    ExitCode.CONFIG,
    ExitCode.STATE,
    ExitCode.AUTH,
    ExitCode.DATA,
    ExitCode.UNAVAILABLE,
    ExitCode.UNDELIVERED,
    ExitCode.TEMPFAIL,
    ExitCode.USAGE,
    ExitCode.OK,
)


@dataclass
class DueResult:
    file: str
    campaign: str | None
    action: str  # "started", "continued", "error"
    exit_code: ExitCode
    outcome: SendOutcome | None = None
    error: MailcastError | None = None


def worst(codes: list[ExitCode]) -> ExitCode:
    return min(codes, key=SEVERITY.index, default=ExitCode.OK)


def campaign_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        else:
            raise UsageError(
                f"{path} does not exist", hint="Give campaign files or folders that hold them (default: campaigns/)."
            )


def run_due(
    paths: list[Path],
    store: StateStore,
    settings: Settings,
    *,
    progress: Callable[[Campaign], SendProgress | None] = lambda campaign: None,
) -> list[DueResult]:
    """Touch only what is due; return one result per run started or continued, and per broken file."""
    results: list[DueResult] = []
    for file in list(campaign_files(paths)):  # every path is checked before anything is sent
        if settings.stop.is_set():  # Ctrl-C or SIGTERM: the other campaigns wait for the next run-due
            break
        try:
            campaign = load_campaign(file)
        except MailcastError as exc:
            results.append(DueResult(str(file), None, "error", exc.exit_code, error=exc))
            continue
        try:
            action, options = _what_is_due(campaign, store, settings)
            if action is None:
                continue
            outcome = send_campaign(campaign, store, settings, options, progress=progress(campaign))
            results.append(DueResult(str(file), campaign.name, action, outcome.exit_code, outcome=outcome))
        except MailcastError as exc:
            results.append(DueResult(str(file), campaign.name, "error", exc.exit_code, error=exc))
    return results


def _what_is_due(campaign: Campaign, store: StateStore, settings: Settings) -> tuple[str | None, SendOptions]:
    now = settings.clock()
    latest = store.latest_run(campaign.name)
    if latest is not None and not latest.finished:
        # An unfinished run goes on first; a new occurrence waits until it is done.
        if latest.status == "paused" and latest.reason == PAUSED_BY_HAND:
            return None, SendOptions()
        if latest.resume_at is not None and latest.resume_at > now:
            return None, SendOptions()
        counts = store.counts(latest.id)
        retry = store.next_retry(latest.id)
        retries_due = counts["deferred"] and retry is not None and retry <= now
        if not counts["pending"] and not retries_due:
            return None, SendOptions()  # only rows in doubt are left: they wait for a person
        return "continued", SendOptions(only_due_retries=True)
    if campaign.schedule is None:
        return None, SendOptions()
    zone = schedule_zone(campaign.schedule, settings.zone)
    last = store.latest_occurrence(campaign.name)
    if last is None and campaign.schedule.cron and campaign.schedule.start is None:
        # Without a start, a cron schedule begins with the first occurrence after run-due first saw it.
        last = store.first_seen(campaign.name, now=now)
    due = occurrences_due(campaign.schedule, zone=zone, last=last, now=now)
    if due is None:
        return None, SendOptions()
    return "started", SendOptions(occurrence=due, again=True)

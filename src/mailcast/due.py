"""run-due: for every campaign file under the given paths, start what is due and continue what waits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mailcast.campaign import Campaign
from mailcast.campaign_file import load_campaign
from mailcast.errors import CampaignBusyError, ExitCode, MailcastError, UsageError
from mailcast.integrity import check_state_file
from mailcast.schedule import occurrences_due, schedule_zone
from mailcast.sending import SendOptions, SendOutcome, SendProgress, Settings, send_campaign
from mailcast.state import StateStore
from mailcast.vocabulary import IN_DOUBT

# Worst first: what a cron job's exit code should say when several runs were touched.
SEVERITY = (
    ExitCode.CONFIG,
    ExitCode.STATE,
    ExitCode.AUTH,
    ExitCode.DATA,
    ExitCode.NOINPUT,
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


def loadable_campaigns(folder: Path) -> list[Campaign]:
    """Every campaign file under the folder that loads without problems (the others are left out)."""
    found = []
    for file in campaign_files([folder]):
        try:
            found.append(load_campaign(file))
        except MailcastError:
            continue
    return found


def run_due(
    paths: list[Path],
    store: StateStore,
    settings: Settings,
    *,
    progress: Callable[[Campaign], SendProgress | None] = lambda campaign: None,
) -> list[DueResult]:
    """Touch only what is due; return one result per run started or continued, and per broken file.

    A broken campaign (its file, CSV, templates, state or server) is a result and the others go on;
    a campaign another process holds is skipped without a result: that process is sending it.
    """
    results: list[DueResult] = []
    for file in list(campaign_files(paths)):  # every path is checked before anything is sent
        if settings.stop.is_set():  # Ctrl-C or SIGTERM: the other campaigns wait for the next run-due
            break
        result = _run_one(file, store, settings, progress)
        if result is not None:
            results.append(result)
    return results


def _run_one(
    file: Path, store: StateStore, settings: Settings, progress: Callable[[Campaign], SendProgress | None]
) -> DueResult | None:
    """Start or continue one campaign if it is due: its result, or None when there was nothing to do."""
    campaign: Campaign | None = None
    try:
        campaign = load_campaign(file)
        check_state_file(campaign, store)  # its runs are in another state file: say so, every time
        action, options = _what_is_due(campaign, store, settings)
        if action is None:
            return None
        if action == TELL_IN_DOUBT:
            outcome = _in_doubt_notice(campaign, store)
        else:
            outcome = send_campaign(campaign, store, settings, options, progress=progress(campaign))
    except CampaignBusyError:
        return None  # the process holding it sends it; README: the second run-due skips it quietly
    except MailcastError as exc:
        return DueResult(str(file), campaign.name if campaign else None, exc.exit_code, error=exc)
    return DueResult(str(file), campaign.name, outcome.exit_code, outcome=outcome)


TELL_IN_DOUBT = "tell of rows in doubt"


def _in_doubt_notice(campaign: Campaign, store: StateStore) -> SendOutcome:
    """Said once, by the first run-due after rows fell in doubt: they wait for a person."""
    run = store.latest_run(campaign.name)
    assert run is not None
    doubtful = [o.email for o in store.in_doubt(run.id)]
    store.mark_in_doubt_noted(run.id)
    summary = (
        f"Run {run.id} of {campaign.name}: {len(doubtful)} recipient(s) in doubt (the connection was lost before "
        f"the server's reply): {', '.join(doubtful)}. run-due never sends them again; check whether they "
        f"arrived, then: mailcast send {campaign.path} --resend-in-doubt (or cancel the run)."
    )
    return SendOutcome(campaign.name, run, store.counts(run.id), ExitCode.TEMPFAIL, summary, in_doubt=doubtful)


def _what_is_due(campaign: Campaign, store: StateStore, settings: Settings) -> tuple[str | None, SendOptions]:
    now = settings.clock()
    latest = store.latest_run(campaign.name)
    if latest is not None and not latest.finished:
        # An unfinished run goes on first; a new occurrence waits until it is done.
        if latest.paused_by_hand:
            return None, SendOptions()
        if latest.resume_at is not None and latest.resume_at > now:
            return None, SendOptions()
        counts = store.counts(latest.id)
        retry = store.next_retry(latest.id)
        retries_due = counts["deferred"] and retry is not None and retry <= now
        if not counts["pending"] and not retries_due:
            # only rows in doubt are left: they wait for a person, who is told once
            return (TELL_IN_DOUBT if counts[IN_DOUBT] and not latest.in_doubt_noted else None), SendOptions()
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

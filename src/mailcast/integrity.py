"""What keeps a campaign with its own state file, its own runs and its own content.

- A campaign that has runs leaves a marker beside its file (`.mailcast/<file name>.state`)
  naming the state file that holds them. Meeting a state file that does not know the campaign
  while the marker names another one (cron or sudo with another HOME, a typo in `--state`) is
  refused: sending would start over and mail everyone again. The marker also counts the latest
  run's claims, kept up to date before each message leaves (`MarkerKeeper`): a copy of the state
  file with fewer is older than what was sent (a backup restored, the file moved without its -wal).
- A campaign's name is bound to the campaign file that first sent it. Another file with the same
  name (a copied folder) is refused while the first file exists; a file that moved takes its
  runs along.
- A run remembers a fingerprint of its subject, templates and attachments, so that continuing it
  after they changed is said out loud.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailcast.campaign import Campaign
from mailcast.errors import ConfigError, StateError
from mailcast.state import Run, StateStore
from mailcast.vocabulary import IN_DOUBT

MARKER_FOLDER = ".mailcast"


def marker_path(campaign: Campaign) -> Path:
    return campaign.folder / MARKER_FOLDER / f"{campaign.path.name}.state"


@dataclass(frozen=True)
class Marker:
    state_id: str
    state_file: str  # resolved
    campaign: str
    run: int | None = None  # the campaign's latest run: a copy of the state file without it is older
    claims: int = 0  # that run's claims when the marker was last written: they only grow


def read_marker(campaign: Campaign) -> Marker | None:
    """The marker beside the campaign file, or None: none yet, or unreadable (then nothing is known)."""
    try:
        data = json.loads(marker_path(campaign).read_text(encoding="utf-8"))
        run, claims = data.get("run"), data.get("claims", data.get("attempts"))  # "attempts": before claims
        marker = Marker(
            str(data["state_id"]),
            str(data["state_file"]),
            str(data.get("campaign", campaign.name)),
            run if isinstance(run, int) else None,
            claims if isinstance(claims, int) else 0,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return marker


def write_marker(campaign: Campaign, store: StateStore, run: Run) -> str | None:
    """Record beside the campaign which state file holds its runs, its latest run and how far that
    run has gone; a note when that cannot be done."""
    path = marker_path(campaign)
    draft = path.with_name(path.name + ".new")
    try:
        path.parent.mkdir(exist_ok=True)
        draft.write_text(_marker_text(_marker_fields(campaign, store, run)), encoding="utf-8")
        # whole or not at all: never an empty marker (read as none), and a keeper still mapping the
        # one before (another process's send) keeps writing to that one, not into this text
        os.replace(draft, path)
    except OSError as exc:
        return f"Note: could not write {path} ({exc.strerror}); mailcast cannot warn if this campaign later meets another state file."
    return None


def _marker_fields(campaign: Campaign, store: StateStore, run: Run) -> dict[str, str | int]:
    return {
        "state_id": store.state_id,
        "state_file": str(store.path.resolve()),
        "campaign": campaign.name,
        "run": run.id,
        "claims": store.claims(run.id),
    }


CLAIMS_WIDTH = 20  # the count of claims, right-aligned, so that it can be changed in place


def _marker_text(fields: dict[str, str | int]) -> str:
    """The marker as JSON, its count of claims last and at a fixed width (see MarkerKeeper)."""
    lines = [f"  {json.dumps(key)}: {json.dumps(value)}," for key, value in fields.items() if key != "claims"]
    return "{\n" + "\n".join(lines) + f'\n  "claims": {fields["claims"]:>{CLAIMS_WIDTH}}\n}}\n'


class MarkerKeeper:
    """While a run is sent, the marker's count of claims follows every durable claim before its
    message leaves, so a copy of the state file that lacks a claim whose message may have gone (a
    backup taken mid-run, the file moved without its -wal after a crash) is found to be older.

    The count is changed in place in a memory map of the marker: no system call, no disk sync per
    message. It survives the process being killed; after a crash of the machine it may be behind the
    state file, which only weakens the warning and never refuses a good file. When the marker cannot
    be kept, sending goes on (as when it could not be written at the start, which said so)."""

    def __init__(self, campaign: Campaign, store: StateStore, run: Run) -> None:
        fields = _marker_fields(campaign, store, run)
        self._claims = int(fields["claims"])
        text = _marker_text(fields).encode("ascii")  # json.dumps escapes anything else
        self._at = text.rindex(b'"claims": ') + len(b'"claims": ')
        self._map: mmap.mmap | None = None
        try:
            with open(marker_path(campaign), "r+b") as handle:
                handle.write(text)
                handle.truncate()
                handle.flush()
                self._map = mmap.mmap(handle.fileno(), len(text))  # the map stays valid once the file is closed
        except (OSError, ValueError):
            self._map = None

    def claimed(self, count: int) -> None:
        """`count` more claims are on disk: the marker says so before their messages leave."""
        if self._map is None:
            return
        self._claims += count
        try:
            self._map[self._at : self._at + CLAIMS_WIDTH] = f"{self._claims:>{CLAIMS_WIDTH}}".encode()
        except (ValueError, OSError):  # the claims are on disk: their messages go, with a warning less
            self.close()

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


def check_state_file(
    campaign: Campaign,
    store: StateStore | None,
    *,
    new_state: bool = False,
    move: bool = True,
    path: Path | None = None,
) -> None:
    """Refuse (74) a state file that is not the one the campaign's marker names: another file that
    does not know the campaign, a new file where the old one was, a copy of it elsewhere, or an older
    copy of it (a backup restored, a file copied without its -wal). With no store, `path` is where
    this command would start a new one."""
    marker = read_marker(campaign)
    if new_state:
        return
    if marker is None:
        _check_renamed_file(campaign, store)
        return
    if marker.campaign != campaign.name:
        _check_rename(campaign, store, marker, move=move)
        if store is None and _renamed(campaign, marker):
            pass  # this file's runs, under its old name, are in the recorded state file: not this one
        elif store is None or store.latest_run(campaign.name) is None:
            return  # the marker of a copied folder's original: this campaign has none yet
        marker = dataclasses.replace(marker, campaign=campaign.name)
    path = store.path if store is not None else path
    problem = _marker_problem(campaign, store, marker, path)
    if problem is None:
        return
    said, hint = problem
    command = f"mailcast --state {path} send {campaign.path} --new-state" if path else "--new-state"
    again = (
        f"To go on with this state file on purpose: {command}"
        if store
        else f"To start a new state file there on purpose: {command}"
    )
    raise StateError(
        f"{said}; sending would mail again whoever the campaign's runs reached",
        hint=f"{hint} {again} (or delete {marker_path(campaign)}).",
    )


def _check_renamed_file(campaign: Campaign, store: StateStore | None) -> None:
    """Refuse (78) a campaign that has no runs while a marker beside it belongs to a campaign file that
    is gone and whose runs are unfinished: the file was most likely renamed, and a campaign named after
    its file would start over under its new name."""
    if store is None or store.latest_run(campaign.name) is not None:
        return
    for other in sorted((campaign.folder / MARKER_FOLDER).glob("*.state")):
        gone = campaign.folder / other.name.removesuffix(".state")
        if gone.exists():
            continue
        try:
            name = str(json.loads(other.read_text(encoding="utf-8"))["campaign"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        latest = store.latest_run(name)
        if latest is not None and not latest.finished and _same_file(Path(latest.campaign_file), gone):
            raise ConfigError(
                f"{campaign.path} has no runs, but {gone.name}, which is gone, left run {latest.id} of campaign "
                f"{name!r} unfinished; if {campaign.path.name} is that file renamed, it would start over and mail "
                "everyone again",
                hint=f"To go on with run {latest.id}, add `name: {name}` to {campaign.path}. If this is another "
                f"campaign, delete {other} (or cancel the old run: mailcast cancel {name}).",
            )


def _renamed(campaign: Campaign, marker: Marker) -> bool:
    """Whether the runs the marker names, in the state file it names, are this campaign file's (its
    `name:` changed since) rather than a copied folder's original's."""
    row = _peek(
        Path(marker.state_file),
        "SELECT campaign_file FROM runs WHERE campaign = ? ORDER BY id DESC LIMIT 1",
        (marker.campaign,),
    )
    return row is not None and _same_file(Path(row[0]), campaign.path)


def _check_rename(campaign: Campaign, store: StateStore | None, marker: Marker, *, move: bool) -> None:
    """A campaign file whose `name:` changed keeps its history: its runs (and schedule) take the new
    name, so nothing is sent again. Refused (78) when the new name already has runs of its own. A
    copied folder's marker names the original, whose runs are another file's: that is no rename."""
    old = store.latest_run(marker.campaign) if store is not None else None
    if store is None or old is None or not _same_file(Path(old.campaign_file), campaign.path):
        return
    if store.latest_run(campaign.name) is not None:
        raise ConfigError(
            f"{campaign.path} now says name {campaign.name!r}, but its runs are under the name {marker.campaign!r}, "
            f"and {campaign.name!r} has runs of its own in {store.path}",
            hint=f"Put `name: {marker.campaign}` back, or choose a name that is not in use.",
        )
    if move:
        store.rename_campaign(marker.campaign, campaign.name)


def _marker_problem(
    campaign: Campaign, store: StateStore | None, marker: Marker, path: Path | None
) -> tuple[str, str] | None:
    """What is wrong with this state file for the campaign, as (what, what to do), or None."""
    name, recorded = campaign.name, marker.state_file
    if store is None and not Path(recorded).exists():
        return (
            f"the runs of {name} are recorded in the state file {recorded}, which is not there any more (deleted "
            "or moved away)",
            "Put it back (from a backup, or from where it was moved, with its -wal file), or give its new place "
            "with --state.",
        )
    if store is None:
        this = f"this command would start a new state file at {path}" if path else "this command uses no state file yet"
        return f"the runs of {name} are recorded in {recorded}, and {this}", (
            f"Use that state file: --state {recorded} (or MAILCAST_STATE, also in crontab and under sudo)."
        )
    same_path = _same_file(Path(recorded), store.path)
    latest = store.latest_run(name)
    if marker.state_id != store.state_id:
        if latest is not None:
            return None  # this file knows the campaign too: it goes on here, and the marker follows
        if same_path:
            return (
                f"the runs of {name} are recorded in the state file that was at {recorded} (id {marker.state_id}); "
                f"the file there now is another one (id {store.state_id}), made since that one was deleted or replaced",
                "Put the original state file back at that path (from a backup, or where it was moved to).",
            )
        return (
            f"the runs of {name} are recorded in the state file {recorded} (id {marker.state_id}), but this command "
            f"uses {store.path} (id {store.state_id}), which does not know the campaign",
            f"Use that state file: --state {recorded} (or MAILCAST_STATE, also in crontab and under sudo).",
        )
    if not same_path and _state_id_of(Path(recorded)) == store.state_id:
        return (
            f"{store.path} is a copy of {recorded}, the state file that holds the runs of {name} (the same id, "
            f"{store.state_id}); two copies would each send what the other already sent",
            f"Use --state {recorded}. If you moved the state file here on purpose, the old path still holds a file.",
        )
    if marker.run is not None and (
        latest is None or latest.id < marker.run or store.claims(marker.run) < marker.claims
    ):
        return (
            f"the state file {store.path} is an older copy of the one that holds the runs of {name}: it lacks what "
            f"run {marker.run} did since (a backup restored, or the file copied or moved without the -wal beside it)",
            "Use the state file that holds it all (with its -wal file, if one is left beside it).",
        )
    return None


def _state_id_of(path: Path) -> str | None:
    """The id of the state file at `path`, read without changing it; None when there is none there."""
    row = _peek(path, "SELECT value FROM meta WHERE key = 'state_id'", ())
    return str(row[0]) if row else None


def _peek(path: Path, sql: str, params: tuple[str, ...]) -> tuple[Any, ...] | None:
    """One row from the state file at `path`, read without changing it; None when there is none."""
    import sqlite3
    from urllib.parse import quote

    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=ro", uri=True)
        try:
            row: tuple[Any, ...] | None = db.execute(sql, params).fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return None
    return row


def check_name(campaign: Campaign, store: StateStore, *, move: bool = True) -> None:
    """Refuse (78) a campaign whose name belongs to another campaign file that still exists; a
    campaign file that moved (its old path is gone) takes its runs along (with `move`)."""
    latest = store.latest_run(campaign.name)
    if latest is None or _same_file(Path(latest.campaign_file), campaign.path):
        return
    old = Path(latest.campaign_file)
    if old.exists():
        raise ConfigError(
            f"the campaign name {campaign.name!r} belongs to another campaign file, {old}, in the state file "
            f"{store.path}; {campaign.path} would continue that campaign's runs",
            hint=f"Give this campaign a name of its own in {campaign.path}, such as `name: {campaign.name}-2` "
            "(a copied campaign folder keeps the original's name, and a file without `name:` is named after "
            "the file, so two campaign.yaml files in different folders share the name campaign).",
        )
    if move:
        store.move_campaign(campaign.name, str(campaign.path))


def _same_file(recorded: Path, current: Path) -> bool:
    if recorded == current:
        return True
    try:
        return recorded.samefile(current)
    except OSError:
        return False


def fingerprint(campaign: Campaign) -> str:
    """A hash of what each recipient reads: subject, template files and attachments."""
    digest = hashlib.sha256()
    digest.update(campaign.subject.encode("utf-8"))
    files = [campaign.template.html, campaign.template.text, campaign.template.markdown, *campaign.attachments]
    for relative in files:
        digest.update(b"\0" + (relative or "").encode("utf-8") + b"\0")
        if relative:
            try:
                digest.update(campaign.resolve(relative).read_bytes())
            except OSError:
                digest.update(b"(unreadable)")
    return digest.hexdigest()[:16]


def content_change(run: Run, campaign: Campaign, counts: dict[str, int]) -> str | None:
    """What to say when the run started with other content than the campaign has now, else None."""
    if run.fingerprint is None or run.fingerprint == fingerprint(campaign):
        return None
    earlier = counts.get("sent", 0) + counts.get(IN_DOUBT, 0)
    total = sum(counts.values())
    return (
        f"The subject, templates or attachments changed since run {run.id} began; "
        f"{earlier} of {total} got an earlier version, the rest get this one."
    )

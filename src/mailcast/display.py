"""How results look: rich tables and progress at a terminal, plain lines under cron, JSON for scripts."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mailcast.errors import MailcastError, Problem, ProblemsError
from mailcast.vocabulary import IN_DOUBT

if TYPE_CHECKING:  # only annotated here: status, warmup and report load what they show, nothing more
    from mailcast.reports import CampaignReport, RunStatus, WarmupStatus
    from mailcast.state import Run
    from mailcast.transports import Delivery


class _Console(Console):
    """When its reader goes away (`mailcast send … | head`), the console goes quiet instead of
    ending the program as rich does: a send must not stop because nobody reads its output."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        with contextlib.suppress(OSError, ValueError):  # later writes go nowhere, without another EPIPE
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.file.fileno())


def make_console(stderr: bool = False) -> Console:
    console = _Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not console.is_terminal:  # logs and pipes: a line stays whole, so a command it suggests can be copied
        console.soft_wrap = True
        if "COLUMNS" not in os.environ:
            console.width = 160  # no terminal to fit, so tables are not cut at 80 columns
    return console


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def show_error(console: Console, error: MailcastError) -> None:
    if isinstance(error, ProblemsError):
        show_problems(console, error.problems, error.warnings)
        return
    console.print(f"[bold red]error:[/] {escape(error.message)}")
    if error.hint:
        console.print(escape(error.hint))


def show_problems(console: Console, errors: Sequence[Problem], warnings: Sequence[Problem]) -> None:
    """Every problem with its place; a table at a terminal, `file:line: message` lines otherwise."""
    if console.is_terminal:
        table = Table(title=None, show_lines=False)
        table.add_column("", no_wrap=True)
        table.add_column("where", no_wrap=True)
        table.add_column("problem")
        for kind, problems in (("[red]error[/]", errors), ("[yellow]warning[/]", warnings)):
            for p in problems:
                table.add_row(kind, escape(p.location), escape(p.message))
        if errors or warnings:
            console.print(table)
    else:
        for kind, problems in (("error", errors), ("warning", warnings)):
            for p in problems:
                where = f"{p.location}: " if p.location else ""
                console.print(f"{kind}: {escape(where + p.message)}", soft_wrap=True)
    console.print(f"{len(errors)} error(s), {len(warnings)} warning(s)")


def show_message(console: Console, data: bytes, *, row: int) -> None:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    console.rule(f"row {row}")
    for name in (
        "From",
        "To",
        "Cc",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "List-Id",
    ):
        if message[name] is not None:
            console.print(f"[bold]{name}:[/] {escape(str(message[name]))}", soft_wrap=True)
    for name, value in message.items():
        if name.lower().startswith("x-"):
            console.print(f"[bold]{name}:[/] {escape(str(value))}", soft_wrap=True)
    for part in message.walk():
        if part.get_content_maintype() == "multipart":
            continue
        kind = part.get_content_type()
        if part.get_content_disposition() == "attachment" or part.get_content_maintype() != "text":
            what = "attachment" if part.get_content_disposition() == "attachment" else "inline"
            console.rule(f"{what} {part.get_filename() or part.get('Content-ID', '')} ({kind})")
            continue
        console.rule(kind)
        console.print(escape(str(part.get_content())), soft_wrap=True)


def show_table(
    console: Console, columns: Sequence[str], rows: Sequence[Sequence[str]], *, title: str | None = None,
    right: Sequence[str] = (),
) -> None:  # fmt: skip
    """A table at a terminal (one record under another when the terminal is too narrow for it);
    under cron and in pipes, plain lines with columns lined up by spaces."""
    if console.is_terminal:
        table = Table(title=title)
        for column in columns:
            table.add_column(column, justify="right" if column in right else "left")
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        if Measurement.get(console, console.options.update_width(10_000), table).maximum <= console.width:
            console.print(table)
            return
        if title:
            console.print(f"[bold]{escape(title)}[/]")
        for index, row in enumerate(rows):
            record = Table.grid(padding=(0, 2))
            record.add_column(style="bold", no_wrap=True)
            record.add_column()
            for name, cell in zip(columns, row, strict=True):
                record.add_row(escape(name), escape(cell))
            console.print(record if index == 0 else Group("", record))
        return
    if title:
        console.print(f"{title}:", markup=False)
    widths = [max(len(str(cell)) for cell in column) for column in zip(columns, *rows, strict=True)]
    for row in (columns, *rows):
        cells = [
            cell.rjust(w) if name in right else cell.ljust(w)
            for cell, w, name in zip(row, widths, columns, strict=True)
        ]
        console.print("  ".join(cells).rstrip(), markup=False, soft_wrap=True)


STATUS_COUNTS = ("failed", "deferred", "skipped", "suppressed", "in doubt", "pending", "bounced", "complained")


def status_table(console: Console, rows: Sequence[RunStatus]) -> None:
    if not rows:
        console.print("No runs yet. Start one with: mailcast send CAMPAIGN")
        return
    cells = []
    for r in rows:
        status = r.status + (f": {r.reason}" if r.reason and r.status in ("paused", "failed", "cancelled") else "")
        counts = (r.failed, r.deferred, r.skipped, r.suppressed, r.in_doubt, r.pending, r.bounced, r.complained)
        cells.append(
            [r.campaign, str(r.run or "-"), r.type, status, f"{r.sent}/{r.total}", *map(str, counts),
             (r.resume_at or "-")[:16].replace("T", " ")]
        )  # fmt: skip
    columns = ["campaign", "run", "type", "status", "sent", *STATUS_COUNTS, "resumes"]
    show_table(console, columns, cells, right=["run", "sent", *STATUS_COUNTS])


def warmup_table(console: Console, rows: Sequence[WarmupStatus]) -> None:
    if not rows:
        console.print("No sender domain has sent yet.")
        return
    cells = [
        [
            r.domain,
            str(r.level or "off"),
            f"{r.limit:,}" if r.limit is not None else "no cap",
            f"{r.sent_today:,}",
            f"{r.remaining:,}" if r.remaining is not None else "-",
            r.resets_at[:16].replace("T", " "),
        ]
        for r in rows
    ]
    numbers = ["level", "today's limit", "sent today", "remaining"]
    show_table(console, ["domain", *numbers, "resets"], cells, right=numbers)


def report_tables(console: Console, report: CampaignReport) -> None:
    console.print(f"Campaign {report.campaign}, run {report.run}", markup=False)
    counts = [[_status_label(status), str(count)] for status, count in report.totals.items() if count]
    show_table(console, ["status", "recipients"], counts, title="totals", right=["recipients"])
    statuses = [s for s in report.totals if any(c[s] for c in report.by_domain.values())]
    by_domain = [[domain, *(str(c[s]) for s in statuses)] for domain, c in report.by_domain.items()]
    labels = [_status_label(s) for s in statuses]
    show_table(console, ["domain", *labels], by_domain, title="by recipient domain", right=labels)
    doubt = [r for r in report.recipients if r["in_doubt"]]
    if doubt:
        cells = [[r["email"], str(r["attempts"]), r["message_id"] or ""] for r in doubt]
        title = "in doubt: went out whole, no reply came; look for the Message-ID, then send --resend-in-doubt"
        show_table(console, ["email", "attempts", "Message-ID"], cells, title=title, right=["attempts"])
    trouble = [
        r for r in report.recipients if r["status"] not in ("sent", "pending", "bounced", "complained", IN_DOUBT)
    ]
    if trouble:
        cells = [[r["email"], r["status"], str(r["attempts"]), r["last_reply"] or ""] for r in trouble]
        show_table(console, ["email", "status", "attempts", "last reply"], cells, title="not sent", right=["attempts"])
    later = [r for r in report.recipients if r["status"] in ("bounced", "complained")]
    if later:
        cells = [[r["email"], r["status"], r["last_reply"] or ""] for r in later]
        show_table(console, ["email", "status", "what came back"], cells, title="sent, then bounced or complained")
    taken = report.totals["sent"] + report.totals["bounced"] + report.totals["complained"]
    if report.totals["bounced"] or report.totals["complained"]:
        rates = report.rates
        console.print(
            f"Of {taken} taken by the servers: {report.totals['bounced']} bounced ({rates['bounced']:.1%}), "
            f"{report.totals['complained']} complained ({rates['complained']:.1%}).",
            markup=False,
        )
    for note in report.notes:
        console.print(f"Note ({note['at'][:16]}): {note['note']}", markup=False, soft_wrap=True)


def _label(delivery: Delivery) -> str:
    return "in doubt" if delivery.status == "in_doubt" else delivery.status


def _status_label(status: str) -> str:
    """A recipient's status as a report says it: a row left `sending` is in doubt."""
    return "in doubt" if status == IN_DOUBT else status


class TerminalProgress:
    """A progress bar with sent, failed and deferred counts, rate and time left."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("sent {task.fields[sent]} · failed {task.fields[failed]} · deferred {task.fields[deferred]}"),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task: Any = None
        self.counts = {"sent": 0, "failed": 0, "deferred": 0, "in_doubt": 0}

    def started(self, campaign: str, run: Run, total: int, done: int, to_send: int, *, in_doubt: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task(
            f"{campaign} run {run.id}", total=to_send, rate="", sent=0, failed=0, deferred=0
        )

    def delivered(self, email: str, delivery: Delivery) -> None:
        self.counts[delivery.status] += 1
        task = self.progress.tasks[0]
        elapsed, delivered = task.elapsed or 0.0, task.completed + 1  # this one included
        c = self.counts
        # the rate since the start: replies that arrive together (several connections) are no speed
        rate = f"{delivered / elapsed:.1f}/s" if elapsed >= 1 else ""
        self.progress.update(
            self.task, advance=1, rate=rate, sent=c["sent"], failed=c["failed"], deferred=c["deferred"]
        )
        if delivery.status != "sent":
            self.progress.console.print(f"{_label(delivery)}: {escape(email)}: {escape(delivery.reply)}")

    def stop(self) -> None:
        self.progress.stop()


class LogProgress:
    """Plain lines for cron and logs: a start line, each failure or deferral, a line every 10%."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.done = 0
        self.total = 0
        self.step = 1
        self.counts = {"sent": 0, "failed": 0, "deferred": 0, "in_doubt": 0}

    def started(self, campaign: str, run: Run, total: int, done: int, to_send: int, *, in_doubt: int) -> None:
        self.total = to_send
        self.step = max(to_send // 10, 100)
        doubt = f", {in_doubt} in doubt" if in_doubt else ""
        self.console.print(
            f"{campaign}: run {run.id}: {to_send} to send ({done} of {total} already done{doubt})", soft_wrap=True
        )

    def delivered(self, email: str, delivery: Delivery) -> None:
        self.done += 1
        self.counts[delivery.status] += 1
        if delivery.status != "sent":
            self.console.print(f"{_label(delivery)}: {email}: {delivery.reply}", soft_wrap=True, markup=False)
        if self.done % self.step == 0 or self.done == self.total:
            c = self.counts
            self.console.print(
                f"progress: {self.done}/{self.total} (sent {c['sent']}, failed {c['failed']}, deferred {c['deferred']})"
            )

    def stop(self) -> None:
        pass


@contextlib.contextmanager
def counting_progress(
    console: Console, label: str, total: int | None, *, shown: bool = True
) -> Iterator[Callable[[], None]]:
    """A progress bar while a long read goes on, at a terminal only; `tick()` after each item."""
    if not shown or not console.is_terminal:
        yield lambda: None
        return
    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), console=console, transient=True)
    with progress:
        task = progress.add_task(label, total=total)
        yield lambda: progress.advance(task)


def show_warnings(console: Console, warnings: Sequence[str]) -> None:
    for warning in warnings:
        console.print(f"warning: {warning}", markup=False, soft_wrap=True)

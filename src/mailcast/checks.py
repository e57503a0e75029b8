"""check_campaign: every problem of a campaign at once, used by check, preview and send."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailcast.addresses import has_control_character
from mailcast.campaign import MAX_SUBJECT, Campaign, SmtpTransport
from mailcast.errors import Problem
from mailcast.message import ad_subject
from mailcast.recipients import DELIMITERS, Recipient, RecipientList, load_recipients
from mailcast.templates import Rendered, TemplateRenderError, TemplateSet, check_variables, load_templates
from mailcast.unsubscribe import check_unsubscribe, unsubscribe_url_problem


@dataclass
class CheckReport:
    campaign: Campaign
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    templates: TemplateSet | None = None
    recipients: RecipientList | None = None
    sendable: list[Recipient] = field(default_factory=list)
    # (row, email, why) for rows skipped under permissive validation and for duplicates
    skipped: list[tuple[int, str, str]] = field(default_factory=list)
    # row -> its rendering, so nothing is rendered twice
    rendered: dict[int, Rendered] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def rows_checked(self) -> int:
        return self.recipients.data_rows if self.recipients else 0

    def as_dict(self, *, file_problems: Sequence[Problem] = ()) -> dict[str, Any]:
        """The shape of `check --json`; `file_problems` are the campaign file's own, found first."""
        errors = [*file_problems, *self.errors]
        return {
            "ok": not errors,
            "errors": [p.as_dict() for p in errors],
            "warnings": [p.as_dict() for p in self.warnings],
            "rows": self.rows_checked,
            "sendable": len(self.sendable),
        }


def check_campaign(
    campaign: Campaign, *, render_rows: bool = True, env: Mapping[str, str] | None = None
) -> CheckReport:
    """Validate CSV, templates and (with render_rows) every rendered row; collect every problem.

    Under `validation: permissive`, problems of single rows become warnings and those rows are
    skipped; problems of the files themselves are always errors. With `env` (the environment the
    CLI read), a password variable that is not set there is a warning.
    """
    report = CheckReport(campaign)
    if env is not None:
        report.warnings.extend(password_env_warnings(campaign, env))
    csv_shown = campaign.recipients
    recipients = load_recipients(
        campaign.resolve(campaign.recipients), campaign.email_column, shown=csv_shown, delimiter=campaign.csv.delimiter
    )
    report.recipients = recipients
    report.warnings.extend(delimiter_note(recipients))
    report.warnings.extend(dkim_alignment_warnings(campaign))
    templates, template_problems = load_templates(campaign)
    report.templates = templates
    report.errors.extend(template_problems)
    report.warnings.extend(check_unsubscribe(campaign, templates))
    if recipients.columns:
        errors, warnings = check_variables(
            templates, recipients.columns, csv_file=csv_shown, email_column=campaign.email_column
        )
        report.errors.extend(errors)
        report.warnings.extend(warnings)

    row_problems = [p for p in recipients.errors if p.row is not None]
    report.errors.extend(p for p in recipients.errors if p.row is None)
    bad_rows: dict[int, str] = {p.row: p.message for p in row_problems if p.row is not None}

    if render_rows and not report.errors:
        for recipient in recipients.rows:
            result = check_rendered_row(campaign, templates, recipient, csv_shown)
            if isinstance(result, Problem):
                row_problems.append(result)
                bad_rows.setdefault(recipient.row, result.message)
            else:
                report.rendered[recipient.row] = result

    permissive = campaign.validation == "permissive"
    for problem in row_problems:
        if permissive:
            report.warnings.append(
                Problem(
                    f"{problem.message} (row skipped: validation is permissive)",
                    problem.file,
                    problem.line,
                    problem.row,
                )
            )
        else:
            report.errors.append(problem)
    emails = {r.row: r.email for r in recipients.rows} | recipients.bad_rows
    for row, why in sorted(bad_rows.items()):
        report.skipped.append((row, emails.get(row, ""), why))
    for duplicate, first in recipients.duplicates:
        report.skipped.append((duplicate.row, duplicate.email, f"duplicate of row {first}"))
        report.warnings.append(
            Problem(
                f"row {duplicate.row}: {duplicate.email} repeats row {first}; it is sent once",
                file=csv_shown,
                line=duplicate.line,
                row=duplicate.row,
            )
        )
    report.sendable = [r for r in recipients.rows if r.row not in bad_rows]
    return report


def password_env_warnings(campaign: Campaign, env: Mapping[str, str]) -> list[Problem]:
    """The variable transport.password_env names is not set: send and test ask for the password at a
    terminal, but under cron they stop (exit 78)."""
    transport = campaign.transport
    if not isinstance(transport, SmtpTransport) or not transport.password_env or env.get(transport.password_env):
        return []
    name = transport.password_env
    message = (
        f"transport.password_env: {name} is not set here; send and test will ask for the password at a "
        f"terminal, but without one (cron) they stop with exit 78: set {name} where they run"
    )
    return [
        Problem(
            message,
            file=campaign.path.name,
            line=campaign.line_of("transport.password_env"),
            key="transport.password_env",
        )
    ]


def delimiter_note(recipients: RecipientList) -> list[Problem]:
    """Which delimiter the list was read with, when mailcast found it and it is not the comma."""
    if recipients.detected_by is None or recipients.delimiter == ",":
        return []
    name = DELIMITERS[recipients.delimiter]
    spelled = "tab" if recipients.delimiter == "\t" else f'"{recipients.delimiter}"'
    return [
        Problem(
            f"read as {name}-separated (found from {recipients.detected_by}); to say so in the campaign file "
            f"and drop this note: csv: {{delimiter: {spelled}}}",
            file=recipients.file,
            line=1,
        )
    ]


def dkim_alignment_warnings(campaign: Campaign) -> list[Problem]:
    """DMARC passes on DKIM only when the signing domain aligns with the From domain: the same domain, or
    (relaxed alignment, the default) one of the same organization, such as a parent or a subdomain."""
    if campaign.dkim is None:
        return []
    signed = _ascii_domain(campaign.dkim.domain)
    sent = _ascii_domain(campaign.sender_domain)
    if signed == sent or sent.endswith("." + signed) or signed.endswith("." + sent):
        return []
    shared = _shared_parent(signed, sent)
    if shared:
        why = (
            f"the DKIM signature will not align for DMARC unless {shared} is the organizational domain of both "
            f"and the DMARC policy allows relaxed alignment (the default); sign with a key of {sent} or {shared} "
            "to be sure"
        )
    else:
        why = (
            "the DKIM signature will not align for DMARC, so receivers that check DMARC treat the mail as not "
            f"signed by its sender; sign with a key of {sent} or a parent domain of it"
        )
    return [
        Problem(
            f"dkim.domain: {signed} is neither the From domain ({sent}) nor a parent domain of it: {why}",
            file=campaign.path.name,
            line=campaign.line_of("dkim.domain"),
            key="dkim.domain",
        )
    ]


def _ascii_domain(domain: str) -> str:
    domain = domain.strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def _shared_parent(one: str, other: str) -> str:
    """The longest parent domain of two or more labels that both are under (a.example.com, b.example.com:
    example.com), or ""."""
    shared: list[str] = []
    for mine, theirs in zip(reversed(one.split(".")), reversed(other.split(".")), strict=False):
        if mine != theirs:
            break
        shared.insert(0, mine)
    return ".".join(shared) if len(shared) >= 2 else ""


def check_rendered_row(
    campaign: Campaign, templates: TemplateSet, recipient: Recipient, csv_shown: str
) -> Rendered | Problem:
    """Render one row and check what ends up in its headers: the rendering, or the row's problem."""

    def problem(message: str) -> Problem:
        return Problem(f"row {recipient.row}: {message}", file=csv_shown, line=recipient.line, row=recipient.row)

    try:
        rendered = templates.render(recipient.values, recipient.email)
    except TemplateRenderError as exc:
        return problem(exc.message)
    subject = ad_subject(rendered.subject, campaign.ad_marker)
    if has_control_character(subject):
        return problem(
            "the rendered subject contains a line break or control character; remove it from the values it uses"
        )
    if not subject.strip():
        return problem("the rendered subject is empty; fill in the values it uses")
    if len(subject) > MAX_SUBJECT:
        return problem(
            f"the rendered subject is {len(subject)} characters long (at most {MAX_SUBJECT}); shorten it or its values"
        )
    if has_control_character(rendered.unsubscribe_url):
        return problem(
            "the unsubscribe URL contains a line break or control character; remove it from the values it uses"
        )
    if too_long := unsubscribe_url_problem(rendered.unsubscribe_url):
        return problem(too_long)
    return rendered

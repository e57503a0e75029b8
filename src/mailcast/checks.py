"""check_campaign: every problem of a campaign at once, used by check, preview and send."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailcast.addresses import has_control_character
from mailcast.campaign import MAX_SUBJECT, Campaign
from mailcast.errors import Problem
from mailcast.message import ad_subject
from mailcast.recipients import Recipient, RecipientList, load_recipients
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


def check_campaign(campaign: Campaign, *, render_rows: bool = True) -> CheckReport:
    """Validate CSV, templates and (with render_rows) every rendered row; collect every problem.

    Under `validation: permissive`, problems of single rows become warnings and those rows are
    skipped; problems of the files themselves are always errors.
    """
    report = CheckReport(campaign)
    csv_shown = campaign.recipients
    recipients = load_recipients(campaign.resolve(campaign.recipients), campaign.email_column, shown=csv_shown)
    report.recipients = recipients
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

"""`mailcast init DIR`: a small campaign that checks clean and sends into a local Maildir."""

from __future__ import annotations

import re
from pathlib import Path

from mailcast.errors import UsageError

CAMPAIGN = """\
# A mailcast campaign. Reference: the README's "Campaign file" section.
name: {name}
from: "Your Name <you@example.com>"
subject: "{{{{ first_name }}}}, a note for you"
template:
  html: body.html
  text: body.txt
recipients: recipients.csv
unsubscribe:
  url: "https://example.com/unsubscribe?e={{{{ email | urlencode }}}}"
  footer: en
# Sends into the local Maildir outbox/ until you point it at a server:
transport:
  type: maildir
  path: outbox
# transport:
#   type: smtp
#   host: smtp.example.com
#   port: 587
#   security: starttls
#   username: you@example.com
#   password_env: MAILCAST_SMTP_PASSWORD
"""

RECIPIENTS = """\
email,first_name
ada@example.com,Ada
zoe@example.org,Zoë
"""

BODY_HTML = """\
<!doctype html>
<html>
  <body>
    <p>Hello {{ first_name }},</p>
    <p>This is your first mailcast campaign.</p>
  </body>
</html>
"""

BODY_TEXT = """\
Hello {{ first_name }},

This is your first mailcast campaign.
"""

FILES = {"campaign.yaml": CAMPAIGN, "recipients.csv": RECIPIENTS, "body.html": BODY_HTML, "body.txt": BODY_TEXT}


def scaffold_campaign(folder: Path) -> list[Path]:
    """Write the four files into `folder` (created if needed); never overwrite an existing file."""
    existing = [folder / name for name in FILES if (folder / name).exists()]
    if existing:
        raise UsageError(
            f"{', '.join(str(p) for p in existing)} already exist{'s' if len(existing) == 1 else ''}",
            hint="Choose a new folder for the campaign; init never overwrites files.",
        )
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", folder.resolve().name).strip("-") or "campaign"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for filename, text in FILES.items():
            path = folder / filename
            path.write_text(text.format(name=name) if filename == "campaign.yaml" else text, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise UsageError(
            f"cannot write into {folder}: {exc.strerror}", hint="Choose a folder you can write to."
        ) from None
    return written

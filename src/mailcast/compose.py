"""From a recipient's values to the bytes of their message: render, mark, add the footer, build.

A `Composer` is made once per run, so everything that is the same for every message
(templates, sender, headers, List-Id, attachments, the template's own inline images, DKIM key)
is prepared once; only a row's own attachments and images are read and encoded per message.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from markupsafe import escape

from mailcast.campaign import Campaign, is_template
from mailcast.message import (
    Attachment,
    DkimSigner,
    MessageBuilder,
    ad_subject,
    encode_attachment,
    encode_inline_image,
    encode_uri,
)
from mailcast.message_ids import make_message_id, random_message_id
from mailcast.templates import InlineImage, Rendered, TemplateRenderError, TemplateSet
from mailcast.unsubscribe import (
    TEST_MAILTO,
    TEST_URL,
    add_footer_html,
    add_footer_text,
    footer_html,
    footer_text,
    list_unsubscribe_header,
    mailto_uri,
    one_click_applies,
    tester_notice_html,
    tester_notice_text,
)


@dataclass(slots=True)  # made once per message: a frozen dataclass costs more to make
class Composed:
    message_id: str
    data: bytes
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()  # in no header: only in the envelope, as the send loop gives it to the transport


def default_list_id(name: str, domain: str) -> str:
    """`<name.sender-domain>` (RFC 2919): the campaign's name as a label of lower-case letters, digits and hyphens."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    label = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:63].strip("-") or "campaign"
    return f"<{label}.{domain}>"


def _file_part(path: Path) -> Attachment:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Attachment(filename=path.name, content_type=kind, data=path.read_bytes())


def _read(path: Path, what: str) -> Attachment:
    """A row's own file, read as its message is built; one gone since `check` is this row's problem."""
    try:
        return _file_part(path)
    except OSError as exc:
        raise TemplateRenderError(f"{what}: cannot read {path}: {exc.strerror}; put the file back") from None


@dataclass(slots=True)
class _Unsubscribe:
    """A message's bodies with their unsubscribe footers, and its List-Unsubscribe URIs and one-click."""

    html: str | None
    text: str
    uris: list[str]
    one_click: bool


def _url_replacements(url: str, new: str) -> tuple[dict[str, str], dict[str, str]]:
    """What to replace in the text part and in the HTML part to turn the row's unsubscribe URL into `new`.

    The URL stands as rendered or percent-encoded (as {{ unsubscribe_url }} gives it), in HTML also escaped,
    and in a text part made from HTML a `mailto:` link shows its address without the scheme.
    """
    forms = (url, encode_uri(url))
    plain = {form: new for form in forms}
    text = plain | {form.removeprefix("mailto:"): new.removeprefix("mailto:") for form in forms}
    html = plain | {str(escape(form)): str(escape(new)) for form in forms}
    return _changed(text), _changed(html)


def _changed(pairs: dict[str, str]) -> dict[str, str]:
    return {form: value for form, value in pairs.items() if form != value}


def _replace(body: str, pairs: dict[str, str]) -> str:
    for form in sorted(pairs, key=len, reverse=True):
        body = body.replace(form, pairs[form])
    return body


class Composer:
    def __init__(self, campaign: Campaign, templates: TemplateSet) -> None:
        self.campaign = campaign
        self.templates = templates
        # each attachment in its place: encoded now, or None for a template (a file per row)
        self.attachment_parts: list[str | None] = [
            None if is_template(relative) else encode_attachment(_file_part(campaign.resolve(relative)))
            for relative in campaign.attachments
        ]
        self.fixed_attachments = [part for part in self.attachment_parts if part is not None]
        self.row_attachments = len(self.fixed_attachments) < len(self.attachment_parts)
        self.shared_images: dict[Path, str] = {}  # the template's own images, encoded once for every message
        if templates.images is not None:
            for path in sorted(templates.images.shared):
                content_id = templates.images.content_id(path)
                self.shared_images[path] = encode_inline_image(_file_part(path), content_id)
        signer = None
        if campaign.dkim is not None:
            key_file = campaign.resolve(campaign.dkim.private_key_file)
            signer = DkimSigner(
                domain=campaign.dkim.domain,
                selector=campaign.dkim.selector,
                private_key=key_file.read_bytes(),
                key_file=str(key_file),
            )
        self.builder = MessageBuilder(
            sender=campaign.sender,
            reply_to=campaign.reply_to_list,
            headers=dict(campaign.headers),
            tags=dict(campaign.tags),
            attachments=[],
            dkim=signer,
            list_id=campaign.list_id or default_list_id(campaign.name, campaign.sender_domain),
        )
        self.domain = campaign.sender_domain
        unsubscribe = campaign.unsubscribe
        self.footer_language = unsubscribe.footer if unsubscribe else "none"
        self.has_url = bool(unsubscribe and unsubscribe.url)
        self.mailto_uris = [mailto_uri(unsubscribe.mailto)] if unsubscribe and unsubscribe.mailto else []
        # a test message's links go nowhere, but are of the same kinds as the real ones
        test_uris, _ = list_unsubscribe_header(
            TEST_URL if self.has_url else None, TEST_MAILTO if self.mailto_uris else None
        )
        self.test_uris = test_uris
        self.test_url = test_uris[0] if test_uris else ""
        # the template starts with its scheme (the campaign file is checked for it), so every row has the same
        self.one_click = one_click_applies(unsubscribe.url if unsubscribe else None)

    def compose(
        self,
        *,
        values: Mapping[str, str],
        email: str,
        run_token: str,
        key: str,
        date: datetime,
        to: str | None = None,
        rendered: Rendered | None = None,
        test: bool = False,
        message_id: str | None = None,
    ) -> Composed:
        """The message for the recipient `email` (addressed to `to` instead, for test sends).

        A `test` message has a Message-ID of its own each time and unsubscribe links that go nowhere.
        `message_id`, the one the state file gave the recipient, is the same as the one made here.
        Raises TemplateRenderError or HeaderInjectionError (both exit 65) for a row that cannot be built.
        """
        rendered = rendered or self.templates.render(values, email)
        subject = ad_subject(rendered.subject, self.campaign.ad_marker)
        if self.campaign.unsubscribe is None:
            way_out = _Unsubscribe(rendered.html, rendered.text, [], False)
        else:
            way_out = self._test_unsubscribe(rendered) if test else self._unsubscribe(rendered)
        if test:
            message_id = random_message_id(self.domain)
        elif message_id is None:
            message_id = make_message_id(run_token, key, self.domain)
        data = self.builder.build(
            to=to or email,
            subject=subject,
            text=way_out.text,
            html=way_out.html,
            message_id=message_id,
            date=date,
            list_unsubscribe=way_out.uris,
            one_click=way_out.one_click,
            to_name=rendered.to_name,
            cc=rendered.cc,
            attachments=self._attachments(rendered),
            inline=[self._image_part(image) for image in rendered.images],
        )
        return Composed(message_id=message_id, data=data, cc=rendered.cc, bcc=rendered.bcc)

    def _attachments(self, rendered: Rendered) -> list[str]:
        """The run's attachments, with this row's own files in their places."""
        if not self.row_attachments:
            return self.fixed_attachments
        files = dict(rendered.attachments)
        parts = []
        for index, part in enumerate(self.attachment_parts):
            if part is None and index in files:
                part = encode_attachment(_read(files[index], f"attachments.{index}"))
            if part is not None:
                parts.append(part)
        return parts

    def _image_part(self, image: InlineImage) -> str:
        shared = self.shared_images.get(image.path)
        if shared is not None:
            return shared
        return encode_inline_image(_read(image.path, "inline image"), image.content_id)

    def _unsubscribe(self, rendered: Rendered) -> _Unsubscribe:
        url = encode_uri(rendered.unsubscribe_url)  # as the parts hold it: links in body, footer and header agree
        uris = [url, *self.mailto_uris] if self.has_url else self.mailto_uris
        html, text = self._footers(rendered.html, rendered.text, url, notice=False)
        return _Unsubscribe(html, text, uris, self.one_click)

    def _test_unsubscribe(self, rendered: Rendered) -> _Unsubscribe:
        """The row's real unsubscribe link nowhere: a tester who clicks it must not unsubscribe a customer."""
        url = self.test_url
        in_text, in_html = _url_replacements(rendered.unsubscribe_url, url)
        html = _replace(rendered.html, in_html) if rendered.html is not None else None
        html, text = self._footers(html, _replace(rendered.text, in_text), url, notice=True)
        return _Unsubscribe(html, text, self.test_uris, self.one_click)

    def _footers(self, html: str | None, text: str, url: str, *, notice: bool) -> tuple[str | None, str]:
        language = self.footer_language
        if language == "none" and not notice:
            return html, text
        if html is not None:
            footer = footer_html(language, url) + (tester_notice_html() if notice else "")
            html = add_footer_html(html, footer)
        text = add_footer_text(text, footer_text(language, url) + (tester_notice_text() if notice else ""))
        return html, text

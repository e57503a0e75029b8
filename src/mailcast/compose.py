"""From a recipient's values to the bytes of their message: render, mark, add the footer, build.

A `Composer` is made once per run, so everything that is the same for every message
(templates, sender, headers, attachments, DKIM key) is prepared once.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from mailcast.campaign import Campaign
from mailcast.message import Attachment, DkimSigner, MessageBuilder, ad_subject, make_message_id
from mailcast.templates import Rendered, TemplateSet
from mailcast.unsubscribe import (
    add_footer_html,
    add_footer_text,
    footer_html,
    footer_text,
    list_unsubscribe_header,
)


@dataclass(frozen=True)
class Composed:
    subject: str
    message_id: str
    data: bytes


class Composer:
    def __init__(self, campaign: Campaign, templates: TemplateSet) -> None:
        self.campaign = campaign
        self.templates = templates
        attachments = []
        for relative in campaign.attachments:
            path = campaign.resolve(relative)
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            attachments.append(Attachment(filename=path.name, content_type=kind, data=path.read_bytes()))
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
            attachments=attachments,
            dkim=signer,
        )
        self.domain = campaign.sender_domain
        self.footer_language = campaign.unsubscribe.footer if campaign.unsubscribe else "none"

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
    ) -> Composed:
        """The message for the recipient `email` (addressed to `to` instead, for test sends).

        Raises TemplateRenderError or HeaderInjectionError (both exit 65) for a row that cannot be built.
        """
        rendered = rendered or self.templates.render(values, email)
        subject = ad_subject(rendered.subject, self.campaign.ad_marker)
        html, text = rendered.html, rendered.text
        list_unsubscribe, one_click = None, False
        unsubscribe = self.campaign.unsubscribe
        if unsubscribe is not None:
            url = rendered.unsubscribe_url
            list_unsubscribe, one_click = list_unsubscribe_header(url if unsubscribe.url else None, unsubscribe.mailto)
            if self.footer_language != "none":
                if html is not None:
                    html = add_footer_html(html, footer_html(self.footer_language, url))
                if text is not None:
                    text = add_footer_text(text, footer_text(self.footer_language, url))
        message_id = make_message_id(run_token, key, self.domain)
        data = self.builder.build(
            to=to or email,
            subject=subject,
            text=text,
            html=html,
            message_id=message_id,
            date=date,
            list_unsubscribe=list_unsubscribe,
            one_click=one_click,
        )
        return Composed(subject=subject, message_id=message_id, data=data)

"""List-Unsubscribe headers (RFC 2369, RFC 8058), the unsubscribe footer in 11 languages, what `check` says
about the unsubscribe URL, and the links of test messages, which go nowhere."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from mailcast.errors import Problem
from mailcast.message import MAX_HEADER_LINE, encode_uri

if TYPE_CHECKING:
    from mailcast.campaign import Campaign
    from mailcast.templates import TemplateSet

# (sentence, link text) per language; the sentence precedes the link.
FOOTERS: dict[str, tuple[str, str]] = {
    "en": ("You are receiving this email because you subscribed to it.", "Unsubscribe"),
    "zh-hans": ("您收到这封邮件是因为您订阅了我们的邮件。", "退订"),
    "zh-hant": ("您收到這封郵件是因為您訂閱了我們的郵件。", "取消訂閱"),
    "es": ("Recibes este correo porque te suscribiste.", "Darse de baja"),
    "fr": ("Vous recevez cet e-mail parce que vous vous êtes abonné.", "Se désabonner"),
    "de": ("Sie erhalten diese E-Mail, weil Sie sich angemeldet haben.", "Abmelden"),
    "ja": ("このメールは、配信登録をされた方にお送りしています。", "配信停止"),
    "ko": ("구독하셨기 때문에 이 이메일을 받으셨습니다.", "수신 거부"),
    "ar": ("تتلقى هذه الرسالة لأنك مشترك في قائمتنا البريدية.", "إلغاء الاشتراك"),
    "th": ("คุณได้รับอีเมลนี้เนื่องจากคุณได้สมัครรับข่าวสารไว้", "ยกเลิกการรับข่าวสาร"),
    "id": ("Anda menerima email ini karena Anda berlangganan.", "Berhenti berlangganan"),
}
RIGHT_TO_LEFT = frozenset({"ar"})


def footer_text(language: str, url: str) -> str:
    if language == "none" or not url:
        return ""
    sentence, link = FOOTERS[language]
    return f"{sentence}\n{link}: {url}\n"


def footer_html(language: str, url: str) -> str:
    if language == "none" or not url:
        return ""
    sentence, link = FOOTERS[language]
    direction = ' dir="rtl"' if language in RIGHT_TO_LEFT else ""
    return (
        f'<div class="mailcast-unsubscribe"{direction} lang="{language}" '
        'style="margin-top:2em;border-top:1px solid #ddd;padding-top:1em;font-size:12px;color:#666">'
        f'{escape(sentence)} <a href="{escape(url, quote=True)}">{escape(link)}</a></div>'
    )


def add_footer_html(html: str, footer: str) -> str:
    if not footer:
        return html
    index = html.lower().rfind("</body>")
    return html[:index] + footer + "\n" + html[index:] if index >= 0 else html + footer


def add_footer_text(text: str, footer: str) -> str:
    if not footer:
        return text
    return text.rstrip("\n") + "\n\n-- \n" + footer


def list_unsubscribe_header(url: str | None, mailto: str | None) -> tuple[list[str], bool]:
    """The URIs of List-Unsubscribe (RFC 2369) and whether one-click (RFC 8058) applies: only with https."""
    uris = []
    if url:
        uris.append(encode_uri(url))
    if mailto:
        uris.append(mailto_uri(mailto))
    return uris, one_click_applies(url)


def one_click_applies(url: str | None) -> bool:
    """RFC 8058 3.1: List-Unsubscribe-Post goes only with an https URI."""
    return url is not None and url[:8].lower() == "https://"


def mailto_uri(address: str) -> str:
    return encode_uri(f"mailto:{address}?subject=unsubscribe")


# Where the unsubscribe links of a test message point: nowhere (RFC 2606 reserves .invalid).
TEST_URL = "https://unsubscribe.invalid/test-message"
TEST_MAILTO = "unsubscribe@test-message.invalid"
TEST_NOTICE = "This is a test message: its unsubscribe link goes nowhere."


def tester_notice_text() -> str:
    return f"{TEST_NOTICE}\n"


def tester_notice_html() -> str:
    return f'<p class="mailcast-test-notice" style="font-size:12px;color:#666">{escape(TEST_NOTICE)}</p>'


# The longest URL that fits, with its brackets and comma, in the first line of the header.
MAX_URL = MAX_HEADER_LINE - len("List-Unsubscribe: <>,")


def unsubscribe_url_problem(url: str) -> str | None:
    """Why a row's rendered unsubscribe URL cannot be sent, or None."""
    if len(url) * 12 <= MAX_URL:  # even if every character took 4 bytes as %XX, it would fit
        return None
    length = len(encode_uri(url))
    if length <= MAX_URL:
        return None
    return (
        f"the unsubscribe URL is {length} characters long once percent-encoded (at most {MAX_URL}, "
        "so that the List-Unsubscribe header fits in one line); shorten it or the values it uses"
    )


def check_unsubscribe(campaign: Campaign, templates: TemplateSet) -> list[Problem]:
    """Warnings about an unsubscribe URL with which one-click unsubscribe (RFC 8058) will not work."""
    template = campaign.unsubscribe.url if campaign.unsubscribe else None
    if not template:
        return []
    warnings = []

    def warn(message: str) -> None:
        line = campaign.line_of("unsubscribe.url")
        warnings.append(Problem(message, file=campaign.path.name, line=line, key="unsubscribe.url"))

    if not one_click_applies(template):
        warn(
            "unsubscribe.url is not https://, so no List-Unsubscribe-Post is sent and mail clients offer no "
            "one-click unsubscribe (RFC 8058 needs https); use an https:// URL"
        )
    names = templates.variables.get("unsubscribe.url")
    if names is not None and not names:
        warn(
            "unsubscribe.url uses no variable, so it is the same for every recipient and a one-click "
            "unsubscribe cannot tell who asked; put a variable in it, such as {{ email | urlencode }}"
        )
    return warnings

"""List-Unsubscribe headers (RFC 2369, RFC 8058) and the unsubscribe footer in 11 languages."""

from __future__ import annotations

from html import escape

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


def list_unsubscribe_header(url: str | None, mailto: str | None) -> tuple[str | None, bool]:
    """The List-Unsubscribe value and whether one-click (RFC 8058) applies: only with an http(s) URL."""
    parts = []
    if url:
        parts.append(f"<{url}>")
    if mailto:
        parts.append(f"<mailto:{mailto}?subject=unsubscribe>")
    if not parts:
        return None, False
    return ", ".join(parts), bool(url and url.startswith(("https://", "http://")))

"""Email through SES v2, rendered in the app (SES templates are not used: moto lacks them, and a
template kept beside the code is reviewed with it).

Every message is plain text plus HTML. Nothing secret goes into an email: links point at the SPA,
and codes are sent by Cognito itself.

Only links we build become links (docs/principles.md §8 rule 16): the sender lists them in ``Email.links``, and
the HTML makes an anchor of a word only when it is one of those, never of a URL that came in with
text a person typed (a name, a reason). Text a person typed never goes to an address that has not
been verified.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from apranova.settings import BaseSettings, load


class MailSettings(BaseSettings):
    email_sender: str
    # The SES configuration set (bounce and complaint handling) where one is deployed.
    email_configuration_set: str | None = None


@dataclass(frozen=True)
class Email:
    to: tuple[str, ...]
    subject: str
    text: str
    # The URLs this message's sender built (the SPA's pages, a presigned link): the only words the
    # HTML makes clickable.
    links: tuple[str, ...] = ()

    @property
    def html(self) -> str:
        """The text as simple HTML: paragraphs and line breaks; the sender's own links clickable."""
        links = {html.escape(link) for link in self.links}

        def linked(word: str) -> str:
            # A sentence may end right after a link: its full stop is not part of it.
            bare = word.rstrip(".,;:!?)")
            return f'<a href="{bare}">{bare}</a>{word[len(bare) :]}' if bare in links else word

        paragraphs = []
        for block in self.text.strip().split("\n\n"):
            lines = [" ".join(linked(word) for word in line.split(" ")) for line in html.escape(block).split("\n")]
            paragraphs.append(f"<p>{'<br>'.join(lines)}</p>")
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"></head>'
            f'<body style="font-family:sans-serif">{"".join(paragraphs)}</body></html>'
        )


# Control characters, line and paragraph separators, bidirectional overrides and isolates.
_NOT_PLAIN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def plain(text: str | None, fallback: str = "") -> str:
    """Text a person typed (a name), as it may appear in a subject or a sentence: one line, no
    control characters, runs of spaces collapsed. Requests refuse such characters at the edge
    (``apranova.fields.PlainName``); this keeps rows written before that, or by hand, in line."""
    cleaned = " ".join(_NOT_PLAIN.sub(" ", text or "").split())
    return cleaned or fallback


@cache
def settings() -> MailSettings:
    return load(MailSettings)


@cache
def client() -> Any:
    import boto3

    return boto3.client("sesv2", region_name=settings().aws_region)


def send(email: Email) -> str:
    """Sends ``email``; returns SES's message id."""
    config = settings()
    request: dict[str, Any] = {
        "FromEmailAddress": config.email_sender,
        "Destination": {"ToAddresses": list(email.to)},
        "Content": {
            "Simple": {
                "Subject": {"Data": email.subject, "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": email.text, "Charset": "UTF-8"},
                    "Html": {"Data": email.html, "Charset": "UTF-8"},
                },
            }
        },
    }
    if config.email_configuration_set:
        request["ConfigurationSetName"] = config.email_configuration_set
    return client().send_email(**request)["MessageId"]


def reset() -> None:
    settings.cache_clear()
    client.cache_clear()

"""Email through SES v2, rendered in the app (SES templates are not used: moto lacks them, and a
template kept beside the code is reviewed with it).

Every message is plain text plus HTML. Nothing secret goes into an email: links point at the SPA,
and codes are sent by Cognito itself.
"""

from __future__ import annotations

import html
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

    @property
    def html(self) -> str:
        """The text as simple HTML: paragraphs, with links kept clickable."""
        paragraphs = []
        for block in self.text.strip().split("\n\n"):
            escaped = html.escape(block).replace("\n", "<br>")
            words = [
                f'<a href="{word}">{word}</a>' if word.startswith(("https://", "http://")) else word
                for word in escaped.split(" ")
            ]
            paragraphs.append(f"<p>{' '.join(words)}</p>")
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"></head>'
            f'<body style="font-family:sans-serif">{"".join(paragraphs)}</body></html>'
        )


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

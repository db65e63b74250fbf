"""The submissions function's settings and its S3 client, made once per warm environment.

Nothing here is secret: the bucket's name, GitHub's public API address, the name of the optional
GitHub token's parameter and link lifetimes. The
email sender is the mail module's own setting (``EMAIL_SENDER``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import Field

from apranova.settings import BaseSettings, load

MB = 1024 * 1024
# The hard ceiling of an upload, whatever a deliverable says.
MAX_UPLOAD_BYTES = 50 * MB


class SubmissionSettings(BaseSettings):
    # Where students' files go (private; objects under submissions/<user_id>/...).
    uploads_bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
    # GitHub's REST API; tests and the local stack may point it at a stand-in.
    github_api_url: str = Field("https://api.github.com", pattern=r"^https?://[^\s/?#@]+(/[^\s?#@]*)?$")
    github_timeout_seconds: float = Field(5.0, gt=0, le=20)
    # The SSM SecureString that may hold a GitHub token (its name, never the token): used when present.
    github_token_param: str | None = Field(None, pattern=r"^/[A-Za-z0-9_./-]{1,1010}$")
    # The presigned POST and the presigned download link: short-lived.
    upload_url_expires_seconds: int = Field(900, ge=60, le=3600)
    download_url_expires_seconds: int = Field(300, ge=30, le=3600)
    # Links in the emails.
    spa_origin: str = "http://localhost:5173"


@cache
def settings() -> SubmissionSettings:
    return load(SubmissionSettings)


@cache
def s3() -> Any:
    """Signature V4 (required by presigned POSTs with session credentials); ``AWS_ENDPOINT_URL``
    points it at moto locally."""
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        connect_timeout=3,
        read_timeout=10,
        retries={"mode": "standard", "max_attempts": 3},
    )
    return boto3.client("s3", region_name=settings().aws_region, config=config)


def reset() -> None:
    settings.cache_clear()
    s3.cache_clear()

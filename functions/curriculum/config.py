"""The curriculum function's settings and its S3 client, made once per warm environment and only by
the dataset route: the other routes neither need the bucket's name nor import boto3."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import Field

from apranova.settings import BaseSettings, load


class CurriculumSettings(BaseSettings):
    datasets_bucket: str = Field(min_length=3, max_length=63)
    # How long a dataset link works. Short: the link is a bearer URL; the student asks for a new one.
    dataset_url_seconds: int = Field(300, ge=30, le=3600)


@cache
def settings() -> CurriculumSettings:
    return load(CurriculumSettings)


@cache
def _s3() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(signature_version="s3v4", connect_timeout=3, read_timeout=10)
    return boto3.client("s3", region_name=settings().aws_region, config=config)


def presign_dataset(key: str, filename: str) -> tuple[str, int]:
    """A presigned GET of ``key`` in the datasets bucket (signed locally: no call to S3), and its lifetime."""
    current = settings()
    url = _s3().generate_presigned_url(
        "get_object",
        Params={
            "Bucket": current.datasets_bucket,
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
        },
        ExpiresIn=current.dataset_url_seconds,
    )
    return str(url), current.dataset_url_seconds


def reset() -> None:
    settings.cache_clear()
    _s3.cache_clear()

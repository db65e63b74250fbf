"""The DP project 1 dataset: deterministic, as messy as promised, uploaded once."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter

import boto3
import pytest
from moto import mock_aws

from functions.migrate.dataset import COLUMNS, DATASET_KEY, generate_csv, upload_dataset

DATE_FORMATS = {
    "iso": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "us": re.compile(r"^\d{2}/\d{2}/\d{4}$"),
    "day month year": re.compile(r"^\d{1,2} [A-Z][a-z]{2} \d{4}$"),
    "iso datetime": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"),
}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(generate_csv().decode("utf-8"))))


def test_generation_is_deterministic():
    assert generate_csv() == generate_csv()
    assert generate_csv(seed=7) == generate_csv(seed=7)
    assert generate_csv(seed=7) != generate_csv()


def test_about_three_thousand_rows_with_the_header(rows):
    assert 2900 <= len(rows) <= 3100
    assert list(rows[0]) == COLUMNS


def test_has_exact_duplicate_rows(rows):
    counts = Counter(tuple(r.values()) for r in rows)
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    assert 30 <= duplicated <= 100


def test_has_missing_values_in_several_columns(rows):
    blank_columns = {column for r in rows for column, value in r.items() if value == ""}
    assert {"order_date", "customer_name", "region", "quantity", "unit_price", "total"} <= blank_columns


def test_dates_come_in_at_least_three_formats(rows):
    seen = {name for r in rows for name, pattern in DATE_FORMATS.items() if pattern.match(r["order_date"])}
    assert len(seen) >= 3
    assert all(r["order_date"] == "" or any(p.match(r["order_date"]) for p in DATE_FORMATS.values()) for r in rows)


def test_categories_have_inconsistent_casing_and_whitespace(rows):
    variants = {r["category"] for r in rows if r["category"].strip().lower() == "electronics"}
    assert "Electronics" in variants and len(variants) >= 3
    assert any(v != v.strip() for v in variants)


def test_money_comes_as_currency_strings_and_quantities_have_outliers(rows):
    assert any(re.match(r"^\$\d{1,3}(,\d{3})+\.\d{2}$", r["total"]) for r in rows)  # "$1,234.50"
    quantities = [int(r["quantity"]) for r in rows if r["quantity"]]
    assert any(q < 0 for q in quantities) and any(q >= 250 for q in quantities)
    assert any(r["discount"].endswith("%") for r in rows) and any(r["discount"].startswith("0.") for r in rows)


@mock_aws
def test_upload_puts_once_and_skips_identical_content():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="datasets")
    s3.put_bucket_versioning(Bucket="datasets", VersioningConfiguration={"Status": "Enabled"})

    def versions() -> list[str]:
        return [v["VersionId"] for v in s3.list_object_versions(Bucket="datasets").get("Versions", [])]

    assert upload_dataset(s3, "datasets") == DATASET_KEY
    assert len(versions()) == 1
    head = s3.head_object(Bucket="datasets", Key=DATASET_KEY)
    assert head["Metadata"]["sha256"] == hashlib.sha256(generate_csv()).hexdigest()
    assert head["ContentType"].startswith("text/csv")
    assert s3.get_object(Bucket="datasets", Key=DATASET_KEY)["Body"].read() == generate_csv()

    assert upload_dataset(s3, "datasets") == DATASET_KEY
    assert len(versions()) == 1  # nothing was put the second time


@mock_aws
def test_upload_replaces_an_object_with_other_content():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="datasets")
    s3.put_object(Bucket="datasets", Key=DATASET_KEY, Body=b"stale", Metadata={"sha256": "0" * 64})
    upload_dataset(s3, "datasets")
    assert s3.get_object(Bucket="datasets", Key=DATASET_KEY)["Body"].read() == generate_csv()


@mock_aws
def test_upload_to_a_missing_bucket_fails_loudly():
    s3 = boto3.client("s3", region_name="us-east-1")
    with pytest.raises(s3.exceptions.ClientError):
        upload_dataset(s3, "no-such-bucket")

"""The RDS CA bundle the layer ships, and the AWS connections that verify against it (issue 14 item 6)."""

from __future__ import annotations

import ssl
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from apranova import db, tls
from apranova.settings import DatabaseSettings

REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-south-1")


def _common_names() -> list[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(tls.RDS_CA_BUNDLE))
    names = []
    for cert in context.get_ca_certs():
        subject = dict(part[0] for part in cert["subject"])
        names.append(subject["commonName"])
    return names


def test_every_certificate_in_the_bundle_parses_and_none_has_expired() -> None:
    text = tls.RDS_CA_BUNDLE.read_text()
    names = _common_names()
    assert len(names) == text.count("-----BEGIN CERTIFICATE-----") > 80
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(tls.RDS_CA_BUNDLE))
    import time

    assert all(ssl.cert_time_to_seconds(cert["notAfter"]) > time.time() for cert in context.get_ca_certs())


def test_the_bundle_holds_the_rds_root_cas_and_the_proxys_amazon_roots() -> None:
    names = set(_common_names())
    for region in REGIONS:
        for ca in ("RSA2048 G1", "RSA4096 G1", "ECC384 G1"):  # rds-ca-rsa2048-g1, rds-ca-rsa4096-g1, rds-ca-ecc384-g1
            assert f"Amazon RDS {region} Root CA {ca}" in names
    for root in ("Amazon Root CA 1", "Amazon Root CA 2", "Amazon Root CA 3", "Amazon Root CA 4"):
        assert root in names  # RDS Proxy's certificates chain to Amazon Trust Services


def test_the_bundle_is_in_the_layer_bundle(tmp_path: Path) -> None:
    from cdk.constructs.bundling import copy_into
    from cdk.constructs.common_layer import PACKAGE

    copy_into(tmp_path, PACKAGE, "python/apranova")  # what the layer's bundler does with the package

    shipped = tmp_path / "python" / "apranova" / "certs" / "rds-global-bundle.pem"
    assert shipped.read_bytes() == tls.RDS_CA_BUNDLE.read_bytes()


def test_the_proxy_connection_in_aws_verifies_the_certificate_and_host(monkeypatch) -> None:
    monkeypatch.delenv("DB_CA_BUNDLE", raising=False)
    settings = DatabaseSettings(db_host="apranova.proxy-abc.us-east-1.rds.amazonaws.com", db_name="apranova")

    params = db._conninfo(settings)

    assert params["sslmode"] == "verify-full"
    assert Path(params["sslrootcert"]) == tls.RDS_CA_BUNDLE and tls.RDS_CA_BUNDLE.is_file()
    assert params["host"] == settings.db_host


def test_the_migrate_function_and_the_provisioner_verify_too(monkeypatch) -> None:
    import json

    import boto3
    from moto import mock_aws

    from apranova import secrets
    from functions.migrate import handler
    from functions.provision.tools import registry

    monkeypatch.delenv("DB_CA_BUNDLE", raising=False)
    monkeypatch.delenv("STUDENTS_DB_ADMIN_URL", raising=False)
    with mock_aws():
        secrets.reset()
        arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="master",
            SecretString=json.dumps({"username": "master", "password": "pw", "host": "db.example", "port": 5432}),
        )["ARN"]
        monkeypatch.setenv("DB_SECRET_ARN", arn)
        monkeypatch.setenv("STUDENTS_DB_ADMIN_SECRET_ARN", arn)
        monkeypatch.setenv("STUDENTS_DB_NAME", "apranova_students")
        monkeypatch.setenv("STUDENTS_DB_HOST", "db.example")
        monkeypatch.setenv("SSM_PREFIX", "/apranova/test")
        migrate = conninfo_to_dict(handler._settings().database_url)
        provisioner = conninfo_to_dict(registry._students_admin_conninfo()(False))
        secrets.reset()
    for params in (migrate, provisioner):
        assert params["sslmode"] == "verify-full"
        assert Path(params["sslrootcert"]) == tls.RDS_CA_BUNDLE

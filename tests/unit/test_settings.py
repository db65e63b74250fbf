import pytest
from pydantic import BaseModel

from apranova.errors import ConfigurationError
from apranova.settings import DatabaseSettings, load


class ExampleSettings(BaseModel):
    datasets_bucket: str
    grace_period_days: int = 30


def test_settings_are_read_from_upper_case_environment_names():
    settings = load(ExampleSettings, {"DATASETS_BUCKET": "b", "GRACE_PERIOD_DAYS": "7"})
    assert settings == ExampleSettings(datasets_bucket="b", grace_period_days=7)


def test_a_missing_setting_is_named_in_the_error():
    with pytest.raises(ConfigurationError, match=r"DATASETS_BUCKET \(missing\)"):
        load(ExampleSettings, {})


def test_an_invalid_setting_is_named_in_the_error():
    with pytest.raises(ConfigurationError, match="GRACE_PERIOD_DAYS"):
        load(ExampleSettings, {"DATASETS_BUCKET": "b", "GRACE_PERIOD_DAYS": "soon"})


def test_database_settings_defaults():
    settings = load(DatabaseSettings, {"DB_HOST": "proxy.example"})
    assert (settings.db_host, settings.db_port, settings.db_name) == ("proxy.example", 5432, "apranova")

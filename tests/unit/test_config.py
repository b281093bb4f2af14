"""Settings: TOML, environment and overrides; bad input fails naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadowtap.config import Settings
from shadowtap.errors import ConfigError


def test_defaults_need_no_file_and_no_environment() -> None:
    settings = Settings.load(env={})
    assert settings.kafka.bootstrap == "127.0.0.1:9092"
    assert settings.topics.mirror == "shadowtap.mirror"


def test_toml_then_environment_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "shadowtap.toml"
    path.write_text(
        '[kafka]\nbootstrap = "from-file:9092"\nlibrdkafka = { "socket.nagle.disable" = "true" }\n'
        '[topics]\npartitions = 12\n[capture]\nexclude_paths = ["/health*"]\n'
    )
    env = {"SHADOWTAP_TOPICS_PARTITIONS": "24", "SHADOWTAP_CAPTURE_SAMPLE_PERCENT": "12.5"}
    settings = Settings.load(path, env=env, overrides={"capture": {"source": "checkout"}})
    assert settings.kafka.bootstrap == "from-file:9092"
    assert settings.kafka.librdkafka == {"socket.nagle.disable": "true"}
    assert settings.topics.partitions == 24
    assert settings.capture.sample_percent == 12.5
    assert settings.capture.exclude_paths == ("/health*",)
    assert settings.capture.source == "checkout"


def test_config_file_from_environment_and_bootstrap_shorthand(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[topics]\nmirror = "m"\n')
    settings = Settings.load(env={"SHADOWTAP_CONFIG": str(path), "SHADOWTAP_BOOTSTRAP": "k:1"})
    assert settings.topics.mirror == "m"
    assert settings.kafka.bootstrap == "k:1"


def test_environment_lists_take_commas_or_json_and_tables_take_json() -> None:
    env = {
        "SHADOWTAP_CAPTURE_EXCLUDE_PATHS": "/a, /b",
        "SHADOWTAP_CAPTURE_INCLUDE_PATHS": '["/x,y"]',
        "SHADOWTAP_KAFKA_LIBRDKAFKA": '{"acks": "1"}',
        "SHADOWTAP_CAPTURE_ENABLED": "off",
    }
    settings = Settings.load(env=env)
    assert settings.capture.exclude_paths == ("/a", "/b")
    assert settings.capture.include_paths == ("/x,y",)
    assert settings.kafka.librdkafka == {"acks": "1"}
    assert settings.capture.enabled is False


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        (
            "[kafka]\nbootstrp = 'x'\n",
            {},
            "unknown setting 'kafka.bootstrp'; known keys in [kafka]: bootstrap",
        ),
        ("[kafak]\n", {}, "unknown setting 'kafak'"),
        (
            "[topics]\npartitions = 'many'\n",
            {},
            "setting 'topics.partitions' = 'many' is invalid: expected an integer",
        ),
        ("[topics]\npartitions = 1.5\n", {}, "expected an integer"),
        ("[kafka]\ncompression = 'brotli'\n", {}, "expected one of 'none', 'lz4'"),
        (
            "[capture]\nenabled = 'yes'\n",
            {},
            "'capture.enabled' = 'yes' is invalid: expected true or false",
        ),
        ("[capture]\nexclude_paths = '/x'\n", {}, "expected a list"),
        ("", {"SHADOWTAP_TOPICS_PARTITIONS": "six"}, "'topics.partitions' = 'six'"),
        ("", {"SHADOWTAP_CAPTURE_ENABLED": "maybe"}, "expected true or false"),
        ("", {"SHADOWTAP_KAFKA_LIBRDKAFKA": "{oops"}, "expected a table written as JSON"),
        ("", {"SHADOWTAP_NOPE_X": "1"}, "SHADOWTAP_NOPE_X is not a shadowtap setting"),
        ("", {"SHADOWTAP_KAFKA_NOPE": "1"}, "unknown setting 'kafka.nope'"),
        ("[kafka\n", {}, "is not valid TOML"),
    ],
)
def test_bad_settings_fail_at_start_naming_the_key(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        Settings.load(path, env=env)
    assert message in str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(tmp_path / "nope.toml", env={})


def test_settings_are_frozen() -> None:
    settings = Settings.load(env={})
    with pytest.raises(AttributeError):
        settings.kafka.bootstrap = "x"  # type: ignore[misc]

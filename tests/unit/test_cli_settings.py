"""The one way from a command's flags to Settings: flags over environment over file."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from shadowtap.cli.settings import command_settings
from shadowtap.config import KafkaSettings
from shadowtap.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_local_broker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [k for k in os.environ if k.startswith("SHADOWTAP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SHADOWTAP_CACHE_DIR", str(tmp_path / "cache"))  # no broker.json here


def _args(**flags: object) -> argparse.Namespace:
    return argparse.Namespace(**{"config": None, "bootstrap": None, **flags})


def test_flags_win_and_unset_flags_keep_the_file_and_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "shadowtap.toml"
    config.write_text('[replayer]\nspeed = "2x"\nmax_in_flight = 8\ngroup = "dr"\n')
    monkeypatch.setenv("SHADOWTAP_REPLAYER_MAX_IN_FLIGHT", "16")
    args = _args(config=str(config), bootstrap="kafka-1:9092")
    settings = command_settings(args, replayer={"speed": "1x", "max_in_flight": None})
    assert settings.replayer.speed == "1x"  # the flag
    assert settings.replayer.max_in_flight == 16  # no flag: the environment over the file
    assert settings.replayer.group == "dr"  # no flag: the file
    assert settings.kafka.bootstrap == "kafka-1:9092"


def test_a_bad_flag_value_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"replayer\.max_in_flight"):
        command_settings(_args(), replayer={"max_in_flight": "many"})


def test_without_bootstrap_or_local_broker_the_default_stays() -> None:
    assert command_settings(_args()).kafka.bootstrap == KafkaSettings().bootstrap

"""Path/method rules are one shape in every stage, and a bad pattern stops start-up."""

from __future__ import annotations

import pytest

from shadowtap.config import Settings
from shadowtap.errors import ConfigError
from shadowtap.rules import RouteMatcher, compile_paths


def test_globs_and_regexes_match_from_the_start() -> None:
    paths = compile_paths(["/health*", "^/v[12]/"])
    assert paths is not None
    assert paths.match("/healthz") and paths.match("/v2/x")
    assert not paths.match("/api/health") and not paths.match("/v3/x")
    assert compile_paths([]) is None


def test_a_route_matches_methods_in_any_case() -> None:
    route = RouteMatcher("/api/*", ["get", "Post"])
    assert route.matches("GET", "/api/x") and route.matches("post", "/api/x")
    assert not route.matches("DELETE", "/api/x") and not route.matches("GET", "/web")
    assert RouteMatcher("*", []).matches("PURGE", "/anything")


@pytest.mark.parametrize(
    ("section", "value", "key"),
    [
        ("processor", {"sample_rules": [{"path": "^(", "percent": 5}]},
         "processor.sample_rules[0]"),
        ("processor", {"routes": [{"path": "/ok", "topic": "a"}, {"path": "^(", "topic": "b"}]},
         "processor.routes[1]"),
        ("replayer", {"allow": [{"path": "^/v[1"}]}, "replayer.allow[0]"),
        ("replayer", {"deny": [{"path": "^(["}]}, "replayer.deny[0]"),
        ("capture", {"exclude_paths": ["/ok", "^(["]}, "exclude_paths[1]"),
        ("capture", {"include_paths": ["^(["]}, "include_paths[0]"),
        ("processor", {"extra_filter_paths": ["^(["]}, "extra_filter_paths[0]"),
    ],
)  # fmt: skip
def test_every_bad_path_regex_is_a_config_error_at_load_naming_the_key(
    section: str, value: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(env={}, overrides={section: value})
    assert key in str(info.value)
    assert "is not a valid regular expression" in str(info.value)


def test_a_route_without_a_topic_is_named() -> None:
    with pytest.raises(ConfigError, match=r"processor\.routes\[0\].*topic"):
        Settings.load(env={}, overrides={"processor": {"routes": [{"path": "/x"}]}})

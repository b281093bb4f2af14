"""Health-check and monitoring filter: probes are not worth replaying.

A request is dropped when its path matches one of ``processor.filter_paths`` (globs, or
regular expressions starting with ``^``) or its User-Agent contains one of
``processor.filter_user_agents`` (case-insensitive). ``extra_filter_paths`` and
``extra_filter_user_agents`` extend the defaults; setting ``filter_paths`` /
``filter_user_agents`` replaces them (``[]`` turns a rule off)::

    probe = ProbeFilter.from_settings(settings.processor)
    reason = probe.drop_reason(env)      # "health-path", "probe-agent" or None
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from shadowtap.config import ProcessorSettings
from shadowtap.envelope import Envelope
from shadowtap.rules import compile_paths


class ProbeFilter:
    """Decides whether a request is a health check or monitoring probe."""

    __slots__ = ("_agents", "_paths")

    def __init__(self, paths: Iterable[str], user_agents: Iterable[str]) -> None:
        self._paths = compile_paths(paths)
        agents = [re.escape(a) for a in user_agents if a]
        self._agents = re.compile("|".join(agents), re.IGNORECASE) if agents else None

    @classmethod
    def from_settings(cls, settings: ProcessorSettings) -> ProbeFilter:
        return cls(
            (*settings.filter_paths, *settings.extra_filter_paths),
            (*settings.filter_user_agents, *settings.extra_filter_user_agents),
        )

    def drop_reason(self, env: Envelope) -> str | None:
        """Why this request should be dropped, or None to keep it."""
        if self._paths is not None and self._paths.match(env.path):
            return "health-path"
        if self._agents is not None:
            agent = env.header("user-agent")
            if agent and self._agents.search(agent):
                return "probe-agent"
        return None

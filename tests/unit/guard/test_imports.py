"""The guard goes into target apps: it must not pull in the pipeline's dependencies."""

from __future__ import annotations

import subprocess
import sys

# What the patch modules import from the libraries they patch (all installed here).
PATCHED = (
    "import httpx, requests, urllib3, aiohttp, aiohttp.base_protocol, multidict, yarl, "
    "django.core.mail, django.core.mail.backends.base, celery, celery.result, kombu.exceptions"
)


def _imported(code: str) -> set[str]:
    """Top-level modules that ``code`` imports, beyond what the interpreter starts with."""
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before} - "
        "set(sys.stdlib_module_names))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_the_guard_and_marking_needs_only_the_stdlib_and_settings() -> None:
    imported = _imported(
        "import shadowtap.guard, shadowtap.guard.django, shadowtap.marking\n"
        "from shadowtap.guard import GuardMiddleware, GuardWSGIMiddleware, is_mirrored"
    )
    assert imported == {"shadowtap", "orjson"}  # orjson: a base dependency, read by settings
    assert _imported("import shadowtap.marking") == {"shadowtap"}


def test_a_running_guard_imports_nothing_but_the_libraries_it_patches() -> None:
    guard = _imported(
        "from shadowtap.config import Settings\n"
        "from shadowtap.guard import GuardMiddleware\n"
        "GuardMiddleware(None, Settings.load(env={}))"
    )
    patched = _imported(PATCHED)
    assert guard - patched == {"shadowtap", "orjson"}
    assert {"httpx", "requests", "aiohttp", "django", "celery"} <= guard

"""Celery: no task is published from a mirrored request.

``Celery.send_task`` publishes every task (``delay``, ``apply_async``, canvas signatures).
Eager tasks (``task_always_eager``) run in place instead, where the other patches see their
side effects. Raise mode: ``CeleryBlocked``, kombu's ``OperationalError`` (what a broker that
is down gives); respond mode: a finished ``EagerResult`` with no value, never executed.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.result import EagerResult
from kombu.exceptions import OperationalError

from shadowtap.errors import SideEffectBlocked
from shadowtap.guard.patches import patch
from shadowtap.guard.policy import Block
from shadowtap.guard.state import current

SendTask = Callable[..., Any]


class CeleryBlocked(SideEffectBlocked, OperationalError):
    """Raised instead of publishing: kombu's ``OperationalError``."""


def canned(block: Block, name: str, task_id: str | None) -> EagerResult:
    return EagerResult(task_id or str(uuid.uuid4()), None, "SUCCESS", name=name)


def wrap_send_task(send_task: SendTask) -> SendTask:
    @functools.wraps(send_task)
    def send_task_checked(self: Celery, name: str, *args: Any, **kwargs: Any) -> Any:
        mirror = current()
        if mirror is not None:
            task_id = kwargs.get("task_id")
            block = mirror.block("celery", f"task {name}")
            return block.resolve(lambda b: canned(b, name, task_id), CeleryBlocked)
        return send_task(self, name, *args, **kwargs)

    return send_task_checked


def install() -> None:
    patch(Celery, "send_task", wrap_send_task)

"""Fork safety: what a forked child (gunicorn/celery prefork, multiprocessing "fork") must renew.

A child inherits the parent's memory, including locks held by threads that do not exist in it and
the process tag that makes client ids unique. Modules register a renewal here; it runs in the child
right after ``fork()`` (``os.register_at_fork``), before any other code of the child.
"""

from __future__ import annotations

import os
from typing import Callable

_hooks: list[Callable[[], None]] = []


class _Process:
    """This process's tag (part of every client id) and how many forks separate it from its origin."""

    tag = os.urandom(3).hex()
    generation = 0


PROCESS = _Process()


def after_fork_in_child(hook: Callable[[], None]) -> None:
    """Run ``hook`` in every forked child (registered once per hook, in import order)."""
    _hooks.append(hook)


def _renew() -> None:
    PROCESS.tag = os.urandom(3).hex()
    PROCESS.generation += 1
    for hook in _hooks:
        try:
            hook()
        except Exception:  # noqa: BLE001 - a failed renewal must not kill the child
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew)

"""Fork safety (issue 11, finding 5): gunicorn/celery prefork workers and multiprocessing "fork" children.

Every child gets its own process tag (so no two processes emit the same ``openai.client.id``, inherited
clients included) and fresh locks (a fork while another thread holds one must not hang the child). Each child
is bounded by a timeout; a hang fails the test, it never stalls the suite.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time

import openai
import pytest

from otel_openai_scopes import attributes as A
from otel_openai_scopes import safety

CHILD_TIMEOUT = 30.0

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")


def _call_and_report(fake_url: str, key: str, inherited: openai.OpenAI, telemetry, write) -> None:
    """In a child: one call on a new client, one on a client built by the parent; report their span ids."""
    fresh = openai.OpenAI(api_key=key, base_url=fake_url, max_retries=0, http_client=openai.DefaultHttpxClient())
    fresh.models.list()
    # a copy: its parent is the inherited one
    inherited.with_options(http_client=openai.DefaultHttpxClient()).models.list()
    try:
        fresh.beta.threads.runs.list("thread_forked")  # a scope error: takes the diagnosis lock
    except openai.APIStatusError:
        pass
    spans = telemetry.spans()[-3:]
    write(json.dumps({
        "fresh": spans[0].attributes[A.CLIENT_ID],
        "copy": spans[1].attributes[A.CLIENT_ID],
        "copy_parent": spans[1].attributes.get(A.CLIENT_PARENT_ID, ""),
        "scope_error": bool(spans[2].attributes.get(A.SCOPE_ERROR)),
    }))


def _fork_child(fake, key, inherited, telemetry) -> int:
    """os.fork a child that reports through a pipe; returns its pid and the read end."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(r)
            _call_and_report(fake.base_url, key, inherited, telemetry,
                             lambda s: os.write(w, s.encode()))
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def _wait(pid: int, fd: int) -> dict:
    deadline = time.monotonic() + CHILD_TIMEOUT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            data = os.read(fd, 65536)
            os.close(fd)
            assert os.waitstatus_to_exitcode(status) == 0 if hasattr(os, "waitstatus_to_exitcode") else status == 0
            return json.loads(data)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    os.close(fd)
    pytest.fail(f"forked child {pid} hung for {CHILD_TIMEOUT}s")


def _prepare(fake, key, instrumentor, telemetry):
    inherited = openai.OpenAI(api_key=key, base_url=fake.base_url, max_retries=0)
    registry = instrumentor.recorder.registry
    fake.lose_scope(key, "api.threads.read", duration=60)
    return inherited, registry.get(inherited).client_id


def test_fork_while_locks_are_held_by_other_threads(fake, key, instrumentor, telemetry):
    """A thread holds every lock of the package at the moment of the fork: the child still works."""
    inherited, parent_id = _prepare(fake, key, instrumentor, telemetry)
    rec = instrumentor.recorder
    locks = [rec.registry._lock, rec.diagnosis._lock, safety._lock]
    held, release = threading.Event(), threading.Event()

    def hold():
        for lock in locks:
            lock.acquire()
        held.set()
        release.wait(60)
        for lock in locks:
            lock.release()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(10)
    try:
        pid, fd = _fork_child(fake, key, inherited, telemetry)
    finally:
        release.set()
        holder.join(10)
    report = _wait(pid, fd)
    assert report["scope_error"]
    assert report["copy_parent"] != parent_id  # the inherited client was renamed in the child
    assert report["fresh"].split("-")[0] != parent_id.split("-")[0]


def test_os_fork_while_threads_create_clients(fake, key, instrumentor, telemetry):
    """Prefork servers fork while the app's threads build clients: children never hang, and no two processes
    (siblings, parent) share a client id, for new or inherited clients."""
    inherited, parent_id = _prepare(fake, key, instrumentor, telemetry)
    shared = openai.DefaultHttpxClient()
    stop = threading.Event()
    built = [0]

    def build():
        while not stop.is_set():
            openai.OpenAI(api_key=key, base_url=fake.base_url, http_client=shared)
            built[0] += 1

    threads = [threading.Thread(target=build, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        while built[0] < 50:
            time.sleep(0.005)
        children = []
        for _ in range(8):
            children.append(_fork_child(fake, key, inherited, telemetry))
            time.sleep(0.01)
        reports = [_wait(pid, fd) for pid, fd in children]
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        shared.close()
    parent_new = openai.OpenAI(api_key=key, base_url=fake.base_url)
    ids = [r["fresh"] for r in reports] + [r["copy"] for r in reports] + [r["copy_parent"] for r in reports]
    ids += [parent_id, instrumentor.recorder.registry.get(parent_new).client_id]
    assert len(set(ids)) == len(ids), ids
    assert len({i.split("-")[0] for i in ids}) == len(reports) + 1  # one process tag per process
    assert all(r["scope_error"] for r in reports)


def _mp_child(fake_url, key, inherited, telemetry, queue):
    _call_and_report(fake_url, key, inherited, telemetry, queue.put)


def test_multiprocessing_fork_start_method(fake, key, instrumentor, telemetry):
    inherited, parent_id = _prepare(fake, key, instrumentor, telemetry)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    stop = threading.Event()
    shared = openai.DefaultHttpxClient()

    def build():
        while not stop.is_set():
            openai.OpenAI(api_key=key, base_url=fake.base_url, http_client=shared)

    threads = [threading.Thread(target=build, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    procs = [ctx.Process(target=_mp_child, args=(fake.base_url, key, inherited, telemetry, queue)) for _ in range(4)]
    try:
        for p in procs:
            p.start()
        reports = [json.loads(queue.get(timeout=CHILD_TIMEOUT)) for _ in procs]
        for p in procs:
            p.join(CHILD_TIMEOUT)
            assert not p.is_alive(), "child hung"
            assert p.exitcode == 0
    finally:
        stop.set()
        for p in procs:
            if p.is_alive():
                p.kill()
        for t in threads:
            t.join(10)
        shared.close()
    ids = [r["fresh"] for r in reports] + [r["copy_parent"] for r in reports] + [parent_id]
    assert len(set(ids)) == len(ids), ids

"""Incident replay: the historical April 2026 incident, under the instrumentation.

The affected apps were async apps on the Assistants API (``beta.threads``), which OpenAI shut down on 2026-08-26;
the replay keeps their calls, against the fake server, because that is what the incident looked like.

Phases (compressed to seconds):

1. healthy traffic: three tasks share one ``AsyncOpenAI`` client, a fourth uses a second client;
2. platform window: the key intermittently loses ``api.threads.read`` for every client;
3. recovery;
4. app bug: a task swaps the shared client's key for a restricted tenant key, then dies with an
   uncaught exception before restoring it, so that client alone keeps failing.

Telemetry goes to an OTLP JSON file (and OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set); the
summary at the end is the same analysis ``otel-openai-scopes report`` runs on that file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

# fake: only the fake server knows it
MAIN_KEY = "sk-proj-FfTEPC7J5Tf4YtmnPFqAxKWeUfs49lGX3ZvZY9w0rWSOdUf9aCgNWepSI3IcAb12"
TENANT_KEY = "sk-proj-QfazcNsOVCSlQGR5hsD1NKhvBoJhyJDEuMMJpOoxDdqDVCwC9ypS5aljimViCd34"  # only model scopes
THREADS_READ = "api.threads.read"
ORG = "org-demo000000000000000001"
PROJECT = "proj_demo0000000000000000001"


@dataclass
class Phases:
    """Each phase lasts its seconds and, on a machine too busy for that, until ``min_calls`` calls were made in it
    (the evidence each phase must leave does not depend on the machine's speed)."""

    healthy: float = 1.5
    platform: float = 2.5
    recovered: float = 1.0
    corrupted: float = 2.0
    loss_probability: float = 0.5
    pause: float = 0.04
    min_calls: int = 24

    def scaled(self, factor: float) -> Phases:
        return Phases(self.healthy * factor, self.platform * factor, self.recovered * factor,
                      self.corrupted * factor, self.loss_probability, self.pause, self.min_calls)


async def _step(client: Any, thread_id: str, step: int) -> None:
    """One call of the app's loop: list runs, post a message, stream a run, or chat."""
    if step == 0:
        await client.beta.threads.runs.list(thread_id, limit=5)
    elif step == 1:
        await client.beta.threads.messages.create(thread_id, role="user", content="status?")
    elif step == 2:
        async with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id="asst_demo") as stream:
            await stream.until_done()
    else:
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


async def _warm_up(client: Any) -> None:
    """Each kind of call once before the clock starts: the SDK's first call of a kind imports and builds its
    models, seconds on a busy machine, which would otherwise eat the healthy phase."""
    for step in range(4):
        await _step(client, "thread_demowarmup", step)


async def _worker(client: Any, name: str, stop: asyncio.Event, pause: float, counts: dict[Any, int]) -> None:
    import openai

    thread_id = "thread_demo" + name
    i = 0
    while not stop.is_set():
        i += 1
        try:
            await _step(client, thread_id, i % 4)
            counts["ok"] = counts.get("ok", 0) + 1
        except openai.APIStatusError as exc:
            counts[exc.status_code] = counts.get(exc.status_code, 0) + 1
        await asyncio.sleep(pause)


async def _tenant_task(shared: Any) -> None:
    """The app bug: swap the shared client's key for a tenant's, fail, never restore it."""
    shared.api_key = TENANT_KEY
    raise RuntimeError("tenant lookup failed")  # the `finally: restore` was forgotten


async def _phase(seconds: float, min_calls: int, counts: dict[Any, int]) -> float:
    """Wait out one phase: ``seconds``, and at least ``min_calls`` calls; returns how long it took."""
    started, before = time.monotonic(), sum(counts.values())
    await asyncio.sleep(seconds)
    while sum(counts.values()) - before < min_calls:
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def _replay(base_url: str, fake: Any, phases: Phases, log: Callable[[str], None]) -> tuple[dict[Any, int], float]:
    """Run the four phases; returns the calls' outcomes and how long the platform phase took."""
    import openai

    counts: dict[Any, int] = {}
    shared = openai.AsyncOpenAI(api_key=MAIN_KEY, organization=ORG, project=PROJECT, base_url=base_url, max_retries=0)
    other = openai.AsyncOpenAI(api_key=MAIN_KEY, organization=ORG, project=PROJECT, base_url=base_url, max_retries=0)
    await _warm_up(other)
    stop = asyncio.Event()
    workers = [asyncio.create_task(_worker(shared, f"shared{i}", stop, phases.pause, counts)) for i in range(3)]
    workers.append(asyncio.create_task(_worker(other, "other", stop, phases.pause, counts)))
    log(f"phase 1: healthy traffic ({phases.healthy:.1f}s)")
    await _phase(phases.healthy, phases.min_calls, counts)
    log(f"phase 2: platform window, the key loses {THREADS_READ} on ~{phases.loss_probability:.0%} of calls "
        f"for every client ({phases.platform:.1f}s)")
    window = fake.lose_scope(MAIN_KEY, THREADS_READ, probability=phases.loss_probability)
    platform = await _phase(phases.platform, phases.min_calls, counts)
    fake.end_window(window)
    log(f"phase 3: recovered ({phases.recovered:.1f}s)")
    await _phase(phases.recovered, phases.min_calls, counts)
    log("phase 4: a task swaps the shared client's key for a restricted tenant key and dies "
        f"with an uncaught exception ({phases.corrupted:.1f}s)")
    bug = asyncio.create_task(_tenant_task(shared))
    await asyncio.gather(bug, return_exceptions=True)  # the app never looks at this result
    await _phase(phases.corrupted, phases.min_calls, counts)
    stop.set()
    await asyncio.gather(*workers)
    await shared.close()
    await other.close()
    return counts, platform


def run_demo(out: str | Path = "demo-output/telemetry.jsonl", html: str | Path | None = "demo-output/report.html",
             time_scale: float = 1.0, console_spans: bool = False) -> object:
    """Run the replay; returns the analysis (also printed)."""
    from ..instrumentor import OpenAIScopesInstrumentor
    from .fake_server import FakeOpenAI
    from .report import analyze_files, render_terminal, write_html
    from .telemetry_setup import setup_telemetry
    from .terminal import widen_when_piped
    from .urls import display_url

    console = widen_when_piped()
    out = Path(out)
    if out.exists():
        out.unlink()
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    telemetry = setup_telemetry("openai-scopes-demo", out, console=console_spans)
    instrumentor = OpenAIScopesInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        with FakeOpenAI() as fake:
            fake.grant(MAIN_KEY, organization=ORG, project=PROJECT)
            fake.grant(TENANT_KEY, scopes=["model.request", "api.model.request"], organization=ORG, project=PROJECT)
            console.print(f"[bold]otel-openai-scopes demo[/]: replaying the April 2026 incident (Assistants API, "
                          f"shut down since) against a fake OpenAI at "
                          f"{fake.base_url}")
            counts, platform = asyncio.run(_replay(fake.base_url, fake, Phases().scaled(time_scale),
                                                   lambda m: console.print("  " + m)))
    finally:
        instrumentor.uninstrument()
        telemetry.shutdown()
    console.print(f"  calls: {counts.get('ok', 0)} ok, {counts.get(401, 0)} x 401")
    where = f"telemetry written to {out}"
    if telemetry.otlp_endpoint:
        where += f" and exported over OTLP to {display_url(telemetry.otlp_endpoint)}"
    # Paths are printed as they are: not parsed as markup ("[x]" in a directory name), not hard-wrapped when piped.
    plain = {"markup": False, "highlight": False, "soft_wrap": not console.is_terminal}
    console.print(where, **plain)
    # Each key fails in one phase only, so a gap as wide as the platform phase (as long as it took) keeps each
    # incident one window even when a busy machine spaces the errors out.
    analysis = analyze_files([out], gap_seconds=platform + 0.5)
    render_terminal(analysis, console)
    if html:
        console.print(f"HTML report: {write_html(analysis, html)}", **plain)
    console.print(f"Re-run the analysis any time: otel-openai-scopes report {out}", **plain)
    return analysis

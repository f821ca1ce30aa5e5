"""The ``otel-openai-scopes`` command: demo, report, doctor, fingerprint and the fake server."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Explain OpenAI 'Missing scopes' 401s with OpenTelemetry.")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output/telemetry.jsonl"), help="OTLP JSON lines file to write."),
    html: Optional[Path] = typer.Option(Path("demo-output/report.html"), help="HTML report to write ('' for none)."),
    time_scale: float = typer.Option(1.0, help="Stretch (>1) or shrink (<1) the replay's phases."),
    console_spans: bool = typer.Option(False, "--console-spans", help="Also print every span as JSON."),
) -> None:
    """Replay the seed incident (platform window, then a corrupted shared client) and diagnose it."""
    from .demo import run_demo

    # typer turns --html '' into Path('.'): that, like no value, means no report
    run_demo(out, html if html is not None and str(html) not in ("", ".") else None, time_scale, console_spans)


@app.command()
def report(
    files: List[Path] = typer.Argument(..., exists=True, dir_okay=False, help="OTLP JSON lines files."),
    html: Optional[Path] = typer.Option(None, help="Also write an HTML report here."),
    gap: float = typer.Option(60.0, help="Seconds without errors that close a window."),
) -> None:
    """Timeline and diagnoses of scope errors from exported telemetry (one or many processes)."""
    from .report import analyze_files, render_terminal, write_html

    analysis = analyze_files(files, gap_seconds=gap)
    render_terminal(analysis)
    if html:
        typer.echo(f"HTML report: {write_html(analysis, html)}")


@app.command()
def fingerprint(
    env: str = typer.Option("OPENAI_API_KEY", help="Environment variable holding the key."),
    stdin: bool = typer.Option(False, "--stdin", help="Read the key from standard input instead."),
) -> None:
    """Print the fingerprint and hint spans carry for a key (read from the environment or stdin, never argv)."""
    from ..config import Settings
    from ..fingerprint import describe

    key = sys.stdin.readline().strip() if stdin else os.environ.get(env, "").strip()
    if not key:
        typer.echo(f"no key: set {env} or pass --stdin", err=True)
        raise typer.Exit(2)
    settings = Settings.load()
    secret = settings.fingerprint_key
    cred = describe(key, secret)
    typer.echo(f"fingerprint {cred.fingerprint}")
    typer.echo(f"hint        {cred.hint}")
    typer.echo(f"kind        {cred.kind}")
    typer.echo(f"hmac        {'yes' if secret else 'no'}")


@app.command()
def doctor(
    key_env: str = typer.Option("OPENAI_API_KEY", "--key-env",
                                help="NAME of the environment variable holding the key (never the key itself)."),
    stdin: bool = typer.Option(False, "--stdin", help="Read the key from standard input instead."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="API base URL (default: $OPENAI_BASE_URL, "
                                           "else the SDK's)."),
    organization: Optional[str] = typer.Option(None, "--organization", help="OpenAI-Organization header "
                                               "(default: $OPENAI_ORG_ID)."),
    project: Optional[str] = typer.Option(None, "--project", help="OpenAI-Project header (default: $OPENAI_PROJECT_ID)."),
    repeat: int = typer.Option(1, "--repeat", help="Attempts (0: until interrupted, a canary)."),
    interval: float = typer.Option(10.0, "--interval", help="Seconds between the starts of attempts."),
    out: Optional[Path] = typer.Option(None, "--out", help="Append telemetry here as OTLP JSON lines."),
    model_request: bool = typer.Option(False, "--model-request",
                                       help="Also probe model.request with one free moderation (a POST)."),
    timeout: float = typer.Option(15.0, "--timeout", help="Seconds per request."),
) -> None:
    """Probe which scopes a key has with read-only requests; exit 0 all granted, 1 missing, 3 flapping,
    4 inconclusive, 2 usage error. The key comes from the environment or stdin, never argv."""
    from .doctor import run_doctor

    raise typer.Exit(run_doctor(key_env=key_env, use_stdin=stdin, base_url=base_url, organization=organization,
                                project=project, repeat=repeat, interval=interval, out=out,
                                model_request=model_request, timeout=timeout))


@app.command("fake-server")
def fake_server(
    port: int = typer.Option(8787, help="Port on 127.0.0.1."),
    key_env: List[str] = typer.Option(["OPENAI_API_KEY"], help="Env vars whose keys get every scope."),
) -> None:
    """Run the fake OpenAI API on 127.0.0.1 (for trying the instrumentation without a real key)."""
    from .fake_server import FakeOpenAI

    fake = FakeOpenAI(port=port).start()
    for name in key_env:
        if os.environ.get(name):
            fake.grant(os.environ[name])
    typer.echo(f"fake OpenAI API on {fake.base_url} (control: POST /__fake__/grant, /__fake__/lose_scope)")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


def main() -> None:
    app()


if __name__ == "__main__":
    main()

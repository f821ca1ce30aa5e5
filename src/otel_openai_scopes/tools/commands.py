"""The ``otel-openai-scopes`` commands: demo, report, doctor, fingerprint and the fake server.

Every user mistake (a missing or unwritable path, a port in use, a negative duration, no key) ends in one
line on stderr and exit code 2, never a traceback. Loaded by :func:`otel_openai_scopes.tools.cli.main`
once the ``cli`` extra is known to be installed.
"""

# typer evaluates these annotations at run time (Optional[...] works on Python 3.9, "X | None" does not),
# and typer.Option(...) defaults are its API:
# ruff: noqa: UP045, B008
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Optional

import typer

from .exit_codes import USAGE as EXIT_USAGE

if TYPE_CHECKING:
    from ..fingerprint import Credential

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Explain OpenAI 'Missing scopes' 401s with OpenTelemetry.")

KEY_ENV_HELP = "NAME of the environment variable holding the key (never the key itself)."


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """One line on stderr, then exit: how every user mistake ends."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def positive(name: str, value: float, allow_zero: bool = False) -> float:
    if value != value or value < 0 or (value == 0 and not allow_zero) or value == float("inf"):
        fail(f"{name} must be {'>= 0' if allow_zero else '> 0'} (got {value:g}).")
    return value


def writable_file(option: str, path: Path) -> Path:
    """``path`` can be created or overwritten: its directory exists (or can be made) and is writable."""
    if path.exists() and path.is_dir():
        fail(f"{option} {path}: is a directory, not a file.")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{option} {path}: cannot create its directory {parent}: {exc.strerror or exc}.")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        fail(f"{option} {path}: not writable.")
    return path


def _no_html(html: Optional[Path]) -> bool:
    # typer turns --html '' into Path('.'): that, like no value, means no report
    return html is None or str(html) in ("", ".")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output/telemetry.jsonl"), help="OTLP JSON lines file to write."),
    html: Optional[Path] = typer.Option(Path("demo-output/report.html"), help="HTML report to write ('' for none)."),
    time_scale: float = typer.Option(1.0, help="Stretch (>1) or shrink (<1) the replay's phases (> 0)."),
    console_spans: bool = typer.Option(False, "--console-spans", help="Also print every span as JSON."),
) -> None:
    """Replay the seed incident (platform window, then a corrupted shared client) and diagnose it."""
    positive("--time-scale", time_scale)
    writable_file("--out", out)
    html_path = None if _no_html(html) else writable_file("--html", html)  # type: ignore[arg-type]
    from .demo import run_demo

    run_demo(out, html_path, time_scale, console_spans)


@app.command()
def report(
    files: list[Path] = typer.Argument(..., help="OTLP JSON lines files, plain or gzip (ours, or a Collector "
                                       "file exporter's), from any number of processes."),
    html: Optional[Path] = typer.Option(None, help="Also write an HTML timeline here (its directory must exist)."),
    as_json: bool = typer.Option(False, "--json", help="Print the analysis as JSON (schema in the README) "
                                 "instead of tables."),
    gap: float = typer.Option(60.0, help="Seconds without errors that close a window (> 0)."),
) -> None:
    """Scope-error windows across processes, with a fleet-wide verdict per window.

    Exit 0: no scope error found; 1: scope errors found; 2: nothing readable (the reason is printed), a usage
    error, or an internal error (one line on stderr: never 1).
    """
    from .terminal import clean

    positive("--gap", gap)
    for f in files:
        if not f.exists():
            fail(clean(f"report: {f}: no such file."))
        if f.is_dir():
            fail(clean(f"report: {f}: is a directory (give the files in it)."))
    html_path = None
    if not _no_html(html):
        folder = html.parent  # type: ignore[union-attr]
        if not folder.exists():  # a typo in a path is not a folder to create
            fail(clean(f"report: --html {html}: no such directory {folder}"))
        if not folder.is_dir():
            fail(clean(f"report: --html {html}: {folder} is not a directory"))
        html_path = writable_file("--html", html)  # type: ignore[arg-type]
    try:
        _report(files, html_path, as_json, gap)
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # noqa: BLE001 - a crash must never read as exit 1, "scope errors found"
        fail(clean(f"report: internal error ({type(exc).__name__}: {exc}); nothing was concluded"))


def _report(files: list[Path], html_path: Optional[Path], as_json: bool, gap: float) -> None:
    from . import report as R
    from .otlp_read import UnreadableFile
    from .terminal import clean

    try:
        analysis = R.analyze_files(files, gap_seconds=gap)
    except UnreadableFile as exc:
        fail(clean(f"report: {exc}"))
    problem = R.nothing_readable(analysis)
    for warning in analysis.warnings:
        typer.echo(clean(warning), err=True)
    if as_json:
        R.write_json(analysis, sys.stdout, problem)
    if problem is not None:
        fail(clean(f"report: {problem}"), R.EXIT_UNREADABLE)
    if not as_json:
        R.render_terminal(analysis)
    if html_path is not None:
        try:
            written = R.write_html(analysis, html_path)
        except OSError as exc:
            fail(clean(f"report: cannot write {html_path}: {exc.strerror or exc}"))
        typer.echo(clean(f"HTML report: {written}"), err=as_json)
    raise typer.Exit(R.exit_code(analysis))


@app.command()
def fingerprint(
    key_env: str = typer.Option("OPENAI_API_KEY", "--key-env", help=KEY_ENV_HELP),
    env: Optional[str] = typer.Option(None, "--env", hidden=True, help="Old name of --key-env."),
    stdin: bool = typer.Option(False, "--stdin", help="Read the key from standard input instead."),
) -> None:
    """Print the fingerprint and hint spans carry for a key (read from the environment or stdin, never argv)."""
    from ..config import Settings
    from ..fingerprint import describe
    from .doctor.inputs import UsageError, read_key

    try:
        key = read_key(env or key_env, stdin, os.environ)
    except UsageError as exc:
        fail(f"fingerprint: {exc}")
    secret = Settings.load().fingerprint_key
    cred = describe(key, secret)
    typer.echo(f"fingerprint {cred.fingerprint}")
    typer.echo(f"hint        {cred.hint}")
    typer.echo(f"kind        {cred.kind}")
    typer.echo(f"hmac        {'yes' if secret else 'no'}")
    for line in _token_lines(key, cred):
        typer.echo(line)


def _token_lines(key: str, cred: Credential) -> list[str]:
    """What the fingerprint of a JWT was computed from and what it grants: claim names, never claim values."""
    from .doctor.credential import read_token, token_lines

    reading = read_token(key, cred)
    return [] if reading is None else [f"{label:<11} {text}" for label, text in token_lines(reading)]


@app.command()
def doctor(
    key_env: str = typer.Option("OPENAI_API_KEY", "--key-env", help=KEY_ENV_HELP),
    env: Optional[str] = typer.Option(None, "--env", hidden=True, help="Alias of --key-env."),
    stdin: bool = typer.Option(False, "--stdin", help="Read the key from standard input instead."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="API base URL (default: $OPENAI_BASE_URL, "
                                           "else the SDK's)."),
    organization: Optional[str] = typer.Option(None, "--organization", help="OpenAI-Organization header "
                                               "(default: $OPENAI_ORG_ID)."),
    project: Optional[str] = typer.Option(None, "--project",
                                          help="OpenAI-Project header (default: $OPENAI_PROJECT_ID)."),
    repeat: int = typer.Option(1, "--repeat", help="Attempts (0: until interrupted, a canary)."),
    interval: float = typer.Option(10.0, "--interval", help="Seconds between the starts of attempts (>= 0)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Append telemetry here as OTLP JSON lines."),
    model_request: bool = typer.Option(False, "--model-request",
                                       help="Also probe model.request with one free moderation (a POST)."),
    timeout: float = typer.Option(15.0, "--timeout", help="Seconds per request (> 0)."),
) -> None:
    """Probe which scopes a key has with read-only requests.

    Exit 0 all granted, 1 missing, 3 flapping, 4 inconclusive, 5 key rejected (invalid_api_key), 6 server
    unreachable, 2 usage error. The key comes from the environment or stdin, never argv.
    """
    if out is not None:
        writable_file("--out", out)
    from .doctor import run_doctor

    raise typer.Exit(run_doctor(key_env=env or key_env, use_stdin=stdin, base_url=base_url,
                                organization=organization, project=project, repeat=repeat, interval=interval,
                                out=out, model_request=model_request, timeout=timeout))


def _fake_server_help() -> str:
    from .fake_server.control import help_text

    return f"""Run the fake OpenAI API on 127.0.0.1 (try the instrumentation without a real key).

Keys in the --key-env variables get every scope; any other key gets 401 invalid_api_key.

Control API (POST a JSON body to the same host and port; each answers with request counts):

{help_text()}

Example: curl -s localhost:8787/__fake__/lose_scope -d '{{"key": "*", "scope": "api.threads.read",
"duration": 60, "probability": 0.5}}'
"""


FAKE_SERVER_HELP = _fake_server_help()


@app.command("fake-server", help=FAKE_SERVER_HELP)
def fake_server(
    port: int = typer.Option(8787, min=0, max=65535, help="Port on 127.0.0.1 (0: any free port)."),
    key_env: list[str] = typer.Option(["OPENAI_API_KEY"], "--key-env", help="NAMEs of environment variables whose "
                                      "keys get every scope (repeatable)."),
) -> None:
    from .fake_server import FakeOpenAI

    try:
        fake = FakeOpenAI(port=port).start()
    except OSError as exc:
        fail(f"fake-server: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}")
    for name in key_env:
        if os.environ.get(name):
            fake.grant(os.environ[name])
    from .fake_server.control import ACTIONS, PREFIX

    typer.echo(f"fake OpenAI API on {fake.base_url} (control: POST {', '.join(PREFIX + a for a in ACTIONS)}; "
               "see --help)")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()

"""Command-line hygiene: every user mistake is one line and exit 2, never a traceback; keys never from argv;
the command without the ``cli`` extra; the runtime imports none of the tools."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from otel_openai_scopes.tools.cli import INSTALL_HINT, key_shaped
from tests.support.keys import make_key

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
KEY = make_key()


def cli(*args: str, stdin: str | None = None, env: dict | None = None, timeout: float = 60,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_"))}
    return subprocess.run([str(BIN / "otel-openai-scopes"), *args], capture_output=True, text=True,
                          input=stdin if stdin is not None else "", env={**base, **(env or {})}, timeout=timeout,
                          cwd=cwd)


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "a-file").write_text("x")
    (d / "good.jsonl").write_text("")
    return d


def busy_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def mistakes(d: Path, port: int) -> list[list[str]]:
    under_a_file = str(d / "a-file" / "x")
    return [
        ["demo", "--time-scale", "-1"], ["demo", "--time-scale", "0"], ["demo", "--time-scale", "nan"],
        ["demo", "--time-scale", "abc"], ["demo", "--out", under_a_file], ["demo", "--html", under_a_file + ".html"],
        ["demo", "--out", str(d)],
        ["report"], ["report", str(d / "missing.jsonl")], ["report", str(d)],
        ["report", "--gap", "-5", str(d / "good.jsonl")], ["report", "--gap", "0", str(d / "good.jsonl")],
        ["report", "--html", under_a_file + ".html", str(d / "good.jsonl")],
        ["report", "--html", str(d), str(d / "good.jsonl")], ["report", "--gap", "x", str(d / "good.jsonl")],
        ["doctor", "--repeat", "-1"], ["doctor", "--interval", "-1"], ["doctor", "--timeout", "0"],
        ["doctor", "--base-url", "htp:/nowhere"], ["doctor", "--base-url", "http://127.0.0.1:99999/v1"],
        ["doctor", "--out", under_a_file], ["doctor", "--key-env", "NOT_SET_ANYWHERE"], ["doctor", "--stdin"],
        ["fingerprint", "--stdin"], ["fingerprint", "--key-env", "NOT_SET_ANYWHERE"],
        ["fake-server", "--port", "99999"], ["fake-server", "--port", "-1"], ["fake-server", "--port", "abc"],
        ["fake-server", "--port", str(port)],
        ["no-such-command"],
    ]


def test_every_user_mistake_is_exit_2_without_a_traceback(paths):
    holder = busy_port()
    try:
        for args in mistakes(paths, holder.getsockname()[1]):
            env = {"OPENAI_API_KEY": KEY} if args[0] == "doctor" and "--key-env" not in args else {}
            out = cli(*args, env=env)
            text = out.stdout + out.stderr
            assert out.returncode == 2, (args, text)
            assert "Traceback" not in text and "Error:" not in text.replace("─ Error ─", ""), (args, text)
            assert KEY[8:20] not in text, args
    finally:
        holder.close()


def test_messages_are_one_line_and_say_what_is_wrong(paths):
    out = cli("demo", "--time-scale", "-1")
    assert out.stderr.strip() == "--time-scale must be > 0 (got -1)."
    assert not (paths / "good.jsonl").read_text()  # nothing was overwritten
    out = cli("report", "--gap", "-5", str(paths / "good.jsonl"))
    assert out.stderr.strip() == "--gap must be > 0 (got -5)."
    out = cli("report", "--html", str(paths / "a-file" / "r.html"), str(paths / "good.jsonl"))
    assert out.stderr.strip() == f"report: --html {paths / 'a-file' / 'r.html'}: {paths / 'a-file'} is not a directory"
    out = cli("demo", "--html", str(paths / "a-file" / "r.html"))
    assert out.stderr.strip().startswith(f"--html {paths / 'a-file' / 'r.html'}: cannot create its directory")
    holder = busy_port()
    try:
        port = holder.getsockname()[1]
        out = cli("fake-server", "--port", str(port))
        assert out.stderr.strip() == f"fake-server: cannot listen on 127.0.0.1:{port}: Address already in use"
    finally:
        holder.close()


@pytest.mark.parametrize("args", [
    ["fingerprint", KEY], ["doctor", "--key-env", KEY], [f"--key-env={KEY}", "doctor"],
    ["report", "sk-svcacct-" + "A" * 40], ["fingerprint", "Bearer " + KEY[8:]],
    ["doctor", "--base-url", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig"],
    ["fingerprint", "0123456789abcdef0123456789abcdef"],  # an Azure-style key
])
def test_key_shaped_arguments_are_refused_without_being_echoed(args):
    out = cli(*args)
    assert out.returncode == 2
    assert "looks like an API key; refusing it (not shown)" in out.stderr
    text = out.stdout + out.stderr
    for arg in filter(key_shaped, args):
        secret = arg.split("=", 1)[-1].replace("Bearer ", "")
        for i in range(len(secret) - 7):
            assert secret[i:i + 8] not in text, secret[i:i + 8]


def test_paths_names_and_numbers_are_not_key_shaped():
    for arg in ("/work/task-sk-123/telemetry.jsonl", "demo-output/telemetry.jsonl", "OPENAI_API_KEY", "8787",
                "--html=report.html", "http://127.0.0.1:8787/v1", "--key-env", "sk-short"):
        assert not key_shaped(arg), arg


def test_one_key_flag_across_commands_and_the_old_one_still_works():
    for command in ("fingerprint", "doctor"):
        help_text = cli(command, "--help").stdout
        assert "--key-env" in help_text and "--env " not in help_text, command  # the alias is hidden
    out = cli("fingerprint", "--env", "MY_KEY", env={"MY_KEY": KEY})
    assert out.returncode == 0 and "hint        sk-proj-..." in out.stdout
    out = cli("fingerprint", "--key-env", "MY_KEY", env={"MY_KEY": KEY})
    assert out.returncode == 0
    out = cli("fingerprint", "--stdin", stdin="")
    assert out.returncode == 2 and out.stderr.strip() == ("fingerprint: no key: --stdin was given but standard "
                                                          "input was empty.")


def test_fake_server_help_documents_the_control_api():
    text = cli("fake-server", "--help", env={"COLUMNS": "200"}).stdout
    for path in ("/__fake__/grant", "/__fake__/lose_scope", "/__fake__/reset", "/__fake__/accept_any_key",
                 "/__fake__/stats"):
        assert path in text, path
    assert '"probability"' in text and '"duration"' in text and "curl" in text


def test_fake_server_answers_a_bad_control_request_with_400(fake):
    url = fake.base_url.replace("/v1", "") + "/__fake__/lose_scope"
    req = urllib.request.Request(url, data=json.dumps({"scope": "x"}).encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 400 and "missing field 'key'" in info.value.read().decode()


# ---- without the cli extra -----------------------------------------------------------------------------------
def _base_closure() -> list:
    """The installed distributions the package's base dependencies (no extra) pull in, markers evaluated."""
    from importlib.metadata import distribution

    from packaging.requirements import Requirement

    todo = [Requirement(r) for r in distribution("otel-openai-scopes").requires or ()]
    seen: dict = {}
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = req.name.lower().replace("_", "-")
        if name in seen:
            continue
        seen[name] = dist = distribution(req.name)
        todo += [Requirement(r) for r in dist.requires or ()]
    return list(seen.values())


def _venv_without_the_cli_extra(where: Path) -> Path:
    """A fresh venv (no pip, no system site-packages) holding the package (a .pth to src/) and, linked from
    this environment, exactly the distributions its base dependencies need: no typer, rich, msgspec, openai
    or OpenTelemetry SDK."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for dist in _base_closure():
        for f in dist.files or ():
            parts = Path(f).parts
            if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith(".pth"):
                continue
            # namespace packages (opentelemetry/) are shared: link their sub-packages one by one
            depth = 2 if parts[0] == "opentelemetry" and len(parts) > 2 else 1
            entry = Path(*parts[:depth])
            target, link = Path(str(dist.locate_file(entry))), site / entry
            if link.exists() or link.is_symlink() or not target.exists():
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target)
    (site / "otel_openai_scopes.pth").write_text(str(ROOT / "src") + "\n")
    return python


def test_without_the_cli_extra_the_command_says_what_to_install(tmp_path):
    python = _venv_without_the_cli_extra(tmp_path / "venv")
    scripts = (ROOT / "pyproject.toml").read_text()
    assert 'otel-openai-scopes = "otel_openai_scopes.tools.cli:main"' in scripts
    # what the console script pip generates runs: import the entry point, call it
    script = "import sys; from otel_openai_scopes.tools.cli import main; sys.argv[0] = 'otel-openai-scopes'; main()"
    for args in (["report", "x.jsonl"], ["--help"], []):
        out = subprocess.run([str(python), "-c", script, *args], capture_output=True, text=True, timeout=60,
                             cwd=tmp_path)
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and INSTALL_HINT in lines[0] and "typer" in lines[0], lines
        assert "opentelemetry-sdk" in lines[0] and "msgspec" in lines[0], lines
        assert "Traceback" not in out.stderr
    # the runtime itself works there: what opentelemetry-instrument loads needs only the base dependencies
    check = subprocess.run([str(python), "-c", "from otel_openai_scopes import OpenAIScopesInstrumentor as I; "
                            "I().instrument(); print('ok')"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and check.stdout.strip() == "ok", check.stderr


# ---- layout: the runtime imports none of the tools ---------------------------------------------------------------
def test_importing_the_instrumentor_imports_no_tool_nor_rich_nor_typer():
    # The CLI's modules are made unimportable: the runtime must neither need nor load them (httpx < 0.28
    # imports rich and click for its own CLI when they are installed, and copes when they are not).
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"rich", "typer", "click", "msgspec", "yaml"}:
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        from otel_openai_scopes import OpenAIScopesInstrumentor
        OpenAIScopesInstrumentor().instrument()
        import openai
        openai.OpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1")
        top = {"rich", "typer", "click", "msgspec", "yaml"}
        print(sorted(m for m in sys.modules if m.startswith("otel_openai_scopes.tools") or m.split(".")[0] in top))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

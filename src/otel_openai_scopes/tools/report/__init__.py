"""Incident report from exported telemetry: scope-error windows with a fleet-wide verdict.

Reads OTLP JSON lines (our ``openai_scopes_file`` exporter, the demo, a Collector ``file`` exporter; plain or
gzip) from one or many processes, in one streaming pass whose memory depends on windows, keys, clients and
processes (each capped: :mod:`.limits`), never on the number of spans, and answers what one process cannot:

* one window per key and set of missing scopes (errors closer than ``gap`` seconds), across every process,
  with the processes' own live verdicts kept inside as history;
* a fleet verdict per window (:func:`.fleet.fleet_verdict`): same-key successes on the same endpoints anywhere in
  the fleet during the window make it platform-side even where a process, with no success of its own,
  said ``unknown`` or ``never_granted``; a key that failed everywhere stays ``never_granted``; errors from
  mutated clients stay the app's fault;
* sentences that claim only the evidence counted (:func:`.fleet.explanation`).

The package by job: :mod:`.read` (spans in), :mod:`.lanes` and :mod:`.windows`, :mod:`.fold` (the streaming fold),
:mod:`.evidence` and :mod:`.fleet` (the fleet view and its rules), :mod:`.merge` and :mod:`.parallel` (byte ranges
read by forked processes), :mod:`.outcome` (exit codes), and one module per output: :mod:`.render_text`,
:mod:`.render_json`, :mod:`.html_model` + :mod:`.render_html` (with ``templates/``).

Exit codes of ``report`` (:mod:`..exit_codes`): 0 no scope error found, 1 scope errors found, 2 nothing readable
or a usage error.
"""

from __future__ import annotations

from .fleet import explanation, fleet_verdict, verdict_lines
from .fold import Analysis, analyze
from .outcome import EXIT_CLEAR, EXIT_SCOPE_ERRORS, EXIT_UNREADABLE, exit_code, nothing_readable
from .parallel import analyze_files
from .render_html import render_html, write_html
from .render_json import SCHEMA, to_json, write_json
from .render_text import render_terminal
from .windows import Window

__all__ = [
    "EXIT_CLEAR",
    "EXIT_SCOPE_ERRORS",
    "EXIT_UNREADABLE",
    "SCHEMA",
    "Analysis",
    "Window",
    "analyze",
    "analyze_files",
    "exit_code",
    "explanation",
    "fleet_verdict",
    "nothing_readable",
    "render_html",
    "render_terminal",
    "to_json",
    "verdict_lines",
    "write_html",
    "write_json",
]

"""What this instrumentation instruments (read by opentelemetry-instrument before importing openai)."""

_instruments = ("openai >= 1.35.7, < 4",)

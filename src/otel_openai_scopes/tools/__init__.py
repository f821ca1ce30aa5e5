"""The command-line tools: demo, report, doctor, fingerprint, the fake OpenAI server and the OTLP file format.

Kept apart from the runtime that ``opentelemetry-instrument`` loads into an app: nothing under
``otel_openai_scopes`` outside this package imports from it (a test checks that rich and typer stay unloaded).
"""

"""Shared test helpers, one module per idea: keys, in-memory telemetry, OTLP files, ports, confmap merging, the
real stack (:mod:`tests.support.stack`, also behind ``scripts/stack.sh``). Test files import from here; nothing
here imports a test file."""

"""The patch points: where the OpenAI SDK is wrapped (wrapt), and nothing else.

Version-stable points, per the SDK research notes:

* ``SyncAPIClient.request`` / ``AsyncAPIClient.request``: once per logical call in every SDK from
  1.35.7 to 3.x (retries never re-enter it); one span per call.
* Every HTTP attempt, with the headers as actually sent: ``_send_request`` on the base clients
  where it exists (2.31+, also catches the workload-identity re-send); before that, the class-level
  ``send`` of ``httpx`` (and ``httpx2`` if installed) clients, filtered to the client of the call in flight.
* Client lifecycle: ``OpenAI``/``AsyncOpenAI.__init__`` and ``copy``/``with_options`` (Azure too).
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from typing import Any

# The class is there; mypy does not see it through the opentelemetry namespace package.
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.metrics import get_meter
from opentelemetry.trace import get_tracer
from wrapt import wrap_function_wrapper

from . import wrappers
from .config import Settings
from .package import _instruments
from .recorder import Recorder
from .safety import report_internal_error
from .scope_map import build_matcher
from .steps import DEFAULT_STEPS, Steps
from .version import __version__

SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"


class OpenAIScopesInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Spans and metrics for every OpenAI API call, tagged with what explains ``Missing scopes`` 401s.

    ``OpenAIScopesInstrumentor().instrument(tracer_provider=..., meter_provider=..., **settings)``;
    settings (see :class:`~otel_openai_scopes.config.Settings`) may also be given to the constructor
    or as ``OTEL_INSTRUMENTATION_OPENAI_SCOPES_*`` environment variables. ``scope_map`` may be a file
    path or a mapping ``{"GET /v1/things/{id}": ["things.read"]}``. ``steps`` (a :class:`~.steps.Steps`)
    replaces the recorder's steps: for benchmarks and fault tests, not applications.
    """

    def __init__(self, **settings: Any) -> None:
        # BaseInstrumentor is a singleton: constructing it again returns the instrumented instance, so
        # the state of a live instrumentation must survive a second __init__ (or uninstrument() could
        # no longer find what it patched).
        super().__init__()
        if not getattr(self, "_is_instrumented_by_opentelemetry", False):
            self._constructor_settings = settings
        if not hasattr(self, "_patched"):
            self._patched: list[tuple[Any, str]] = []
            self.recorder: Recorder | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    # -- instrument / uninstrument ---------------------------------------------------------------
    def _instrument(self, **kwargs: Any) -> None:
        import openai
        from openai import _base_client
        from openai._streaming import AsyncStream, Stream

        overrides = dict(getattr(self, "_constructor_settings", {}))
        scope_map_override = None
        for name in list(kwargs):
            if name in ("tracer_provider", "meter_provider"):
                continue
            overrides[name] = kwargs[name]
        steps = overrides.pop("steps", None)
        if not isinstance(steps, Steps):
            steps = DEFAULT_STEPS
        if not isinstance(overrides.get("scope_map"), (str, type(None))):
            scope_map_override = overrides.pop("scope_map")
        settings = Settings.load(overrides)
        matcher = build_matcher(settings.scope_map, scope_map_override)
        tracer = get_tracer(__name__, __version__, kwargs.get("tracer_provider"), schema_url=SCHEMA_URL)
        meter = get_meter(__name__, __version__, kwargs.get("meter_provider"), schema_url=SCHEMA_URL)
        sdk_version = getattr(openai, "__version__", "") or getattr(getattr(openai, "version", None), "VERSION", "")
        self.recorder = recorder = Recorder(tracer, meter, settings, matcher, sdk_version, steps)
        self._patched = []

        stream_types = (Stream, AsyncStream)
        self._wrap(_base_client, "SyncAPIClient", "request", wrappers.sync_request(recorder, stream_types))
        self._wrap(_base_client, "AsyncAPIClient", "request", wrappers.async_request(recorder, stream_types))

        if steps.attempt_hook:
            self._wrap_attempts(_base_client, recorder)

        init_wrapper = wrappers.client_init(recorder)
        copy_wrapper = wrappers.client_copy(recorder)
        for cls_name in ("OpenAI", "AsyncOpenAI"):
            self._wrap(openai, cls_name, "__init__", init_wrapper)
        for module, cls_name in (
            (openai, "OpenAI"),
            (openai, "AsyncOpenAI"),
            (openai, "AzureOpenAI"),
            (openai, "AsyncAzureOpenAI"),
        ):
            cls = getattr(module, cls_name, None)
            if cls is None:
                continue
            for attr in ("copy", "with_options"):
                if attr in vars(cls):
                    self._wrap(module, cls_name, attr, copy_wrapper)

    def _wrap_attempts(self, _base_client: Any, recorder: Recorder) -> None:
        """The per-attempt hook: ``_send_request`` where the SDK has it, else ``send`` of its HTTP clients."""
        if hasattr(_base_client.SyncAPIClient, "_send_request"):
            self._wrap(_base_client, "SyncAPIClient", "_send_request", wrappers.sync_send(recorder, by="client"))
            self._wrap(_base_client, "AsyncAPIClient", "_send_request", wrappers.async_send(recorder, by="client"))
            return
        for module_name in ("httpx", "httpx2"):
            try:
                mod = importlib.import_module(module_name)
            except ImportError:
                continue
            self._wrap(mod, "Client", "send", wrappers.sync_send(recorder, by="http"))
            self._wrap(mod, "AsyncClient", "send", wrappers.async_send(recorder, by="http"))

    def _uninstrument(self, **kwargs: Any) -> None:
        for owner, attr in reversed(self._patched):
            try:
                unwrap(owner, attr)
            except Exception as exc:  # noqa: BLE001
                report_internal_error("uninstrument", exc)
        self._patched = []
        self.recorder = None

    def _wrap(self, module: Any, cls_name: str, attr: str, wrapper: Any) -> None:
        cls = getattr(module, cls_name)
        wrap_function_wrapper(module, f"{cls_name}.{attr}", wrapper)
        self._patched.append((cls, attr))

    @property
    def patched(self) -> list[tuple[Any, str]]:
        """(class, attribute) pairs currently wrapped, for tests and ``doctor``."""
        return list(self._patched)

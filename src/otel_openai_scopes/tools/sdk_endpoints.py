"""Every endpoint the installed ``openai`` SDK calls: method, path template and the SDK operations that call it.

The scope map must follow the SDK: a release that adds ``/agents`` or ``/vaults`` makes spans without a required
scope unless the map learns the endpoint. This reads the SDK itself rather than a copy of the API spec: the client's
resource tree by introspection (``client.beta.threads.runs`` -> its class), then each resource method's source by
AST, where the call ``self._get/_post/_delete/_put/_patch/_get_api_list(path, ...)`` names the method and the path
(a literal, ``path_template("/threads/{thread_id}")`` in 2.x+/3.x, or an f-string ``f"/threads/{thread_id}"``
in 1.x; ``functools.partial(self._post, path, ...)`` in streaming helpers). A query string inside the path
(``"/responses?beta=true"``) is kept apart from the template. Nothing is sent: the client is built against a
loopback address and never used.

``python -m otel_openai_scopes.tools.sdk_endpoints`` lists them as TSV; ``scope_map_sync`` compares them with the
packaged scope map.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: The base client's request shortcuts and the HTTP method each sends (``_get_api_list`` may say ``method=``).
_SHORTCUTS = {"_get": "GET", "_post": "POST", "_delete": "DELETE", "_put": "PUT", "_patch": "PATCH",
              "_get_api_list": "GET"}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
#: A header the SDK's helpers add to tell their calls apart: the runtime reads the ones it knows
#: (:data:`~otel_openai_scopes.endpoints.HELPER_HEADERS`); the scan reports every one, so a new one is noticed.
_HELPER_HEADER = re.compile(r"X-Stainless-[A-Za-z-]*Helper[A-Za-z-]*", re.IGNORECASE)
#: What the scan reports for a helper header whose value is not a literal string.
COMPUTED = "<computed>"


@dataclass(frozen=True)
class SdkCall:
    """One call site: ``operation`` (``beta.threads.runs.list``, or ``lib:<module>.<function>`` for a helper module)
    sends ``method`` to ``template`` (relative to the API base, ``{name}`` placeholders) with ``query``
    (``beta=true``, or empty) in the path string."""

    method: str
    template: str
    operation: str
    query: str = ""


@dataclass(frozen=True)
class SdkScan:
    """What one installed SDK calls: its version, its call sites, its public resource methods
    (``beta.threads.runs.poll``), the helper header values it sends, and the call sites whose path could not be
    read statically (reported, never silently dropped)."""

    version: str
    calls: tuple[SdkCall, ...]
    methods: frozenset[str]
    helper_values: tuple[tuple[str, str], ...]
    unreadable: tuple[str, ...]

    def endpoints(self) -> dict[tuple[str, str], list[SdkCall]]:
        """(method, template) -> the calls that send it, in scan order."""
        out: dict[tuple[str, str], list[SdkCall]] = {}
        for call in self.calls:
            out.setdefault((call.method, call.template), []).append(call)
        return out


def _resource_classes(client: Any, resource_base: type) -> dict[type, str]:
    """Each resource class reachable from the client -> its shortest attribute path (``beta.threads.runs``)."""
    found: dict[type, str] = {}
    queue: list[tuple[Any, str]] = [(client, "")]
    while queue:
        obj, path = queue.pop(0)
        # 2.x/3.x: cached properties on the class; 1.x: attributes set in ``__init__``.
        names = set(getattr(obj, "__dict__", {})) | set(dir(type(obj)))
        for name in sorted(names):
            if name.startswith("_") or name in ("with_raw_response", "with_streaming_response"):
                continue
            static = inspect.getattr_static(obj, name, None)
            if not isinstance(static, resource_base) and not isinstance(static, property) and \
                    type(static).__name__ != "cached_property":
                continue
            try:
                value = getattr(obj, name)
            except Exception:  # noqa: BLE001 - a resource that cannot be built here has nothing to scan
                continue
            if not isinstance(value, resource_base) or type(value) in found:
                continue
            dotted = f"{path}.{name}" if path else name
            found[type(value)] = dotted
            queue.append((value, dotted))
    return found


def _template_of(node: ast.expr) -> str | None:
    """The path argument as a template, or None when it is not a static string."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "path_template":
        return _template_of(node.args[0]) if node.args else None
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                parts.append("{" + ast.unparse(value.value) + "}")
        return "".join(parts)
    return None


def _calls_in(func: ast.AST, receivers: tuple[str, ...] = ("self",)) -> Iterator[tuple[str, ast.Call]]:
    """(shortcut name, call) for each request a function body makes on a resource named in ``receivers``,
    directly or through ``partial``."""
    for node in ast.walk(func):
        if not isinstance(node, ast.Call):
            continue
        target: ast.expr = node.func
        args = node.args
        if getattr(target, "id", getattr(target, "attr", "")) == "partial" and args:
            target, args = args[0], args[1:]
        if isinstance(target, ast.Attribute) and target.attr in _SHORTCUTS and \
                isinstance(target.value, ast.Name) and target.value.id in receivers:
            yield target.attr, ast.Call(func=target, args=list(args), keywords=node.keywords)


def _method_of(shortcut: str, call: ast.Call) -> str:
    for kw in call.keywords:
        if kw.arg == "method" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
            return kw.value.value.upper()
    return _SHORTCUTS[shortcut]


def _normalise(template: str) -> tuple[str, str]:
    """(template with ``{name}`` placeholders and no query, query) from an SDK path string."""
    path, _, query = template.partition("?")
    path = _PLACEHOLDER.sub(lambda m: "{" + m.group(1).split(".")[-1].strip() + "}", path)
    return "/" + path.strip("/"), query


def _class_node(cls: type) -> ast.ClassDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return None
    tree = ast.parse(source)
    node = tree.body[0] if tree.body else None
    return node if isinstance(node, ast.ClassDef) else None


def _methods(cls: type, resource_base: type, unreadable: list[str], dotted: str
             ) -> Iterator[tuple[str, ast.FunctionDef]]:
    """The public methods of a resource class with their AST, inherited ones included (``client.webhooks`` is a
    subclass that adds verification helpers to the generated class); a subclass's definition wins."""
    overridden: set[str] = set()
    for klass in cls.__mro__:
        if klass is resource_base or not issubclass(klass, resource_base):
            continue
        node = _class_node(klass)
        if node is None:
            unreadable.append(dotted)
            continue
        defined = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
        for func in node.body:  # every definition of a name: ``@overload`` stubs first, then the real one
            if isinstance(func, ast.FunctionDef) and not func.name.startswith("_") and func.name not in overridden:
                yield func.name, func
        overridden |= defined


def _lib_calls(package_dir: str, unreadable: list[str]) -> Iterator[SdkCall]:
    """Requests the SDK's helper modules (``openai/lib``) make on the resource they are given: they share the
    resources' endpoints today; listed so that an endpoint only a helper calls is not missed. Named
    ``lib:<module>.<function>``."""
    import pathlib

    root = pathlib.Path(package_dir)
    for path in sorted((root / "lib").rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "._post(" not in text and "._get(" not in text and "._delete(" not in text:
            continue
        module = ".".join(path.relative_to(root / "lib").with_suffix("").parts)
        for func in ast.walk(ast.parse(text)):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for shortcut, call in _calls_in(func, ("self", "resource")):
                where = f"lib:{module}.{func.name}"
                raw = _template_of(call.args[0]) if call.args else None
                if raw is None:
                    unreadable.append(where)
                    continue
                template, query = _normalise(raw)
                yield SdkCall(_method_of(shortcut, call), template, where, query)


def scan_helper_headers(package_dir: str) -> Iterator[tuple[str, str]]:
    """(header, value) for each helper header the SDK's source sets (:data:`COMPUTED` for a value that is not a
    literal string)."""
    import pathlib

    seen: set[tuple[str, str]] = set()
    for path in sorted(pathlib.Path(package_dir).rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "X-Stainless-" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.Dict):
                continue
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and isinstance(k.value, str) and _HELPER_HEADER.fullmatch(k.value):
                    value = v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else COMPUTED
                    pair = (k.value, value)
                    if pair not in seen:
                        seen.add(pair)
                        yield pair


def scan() -> SdkScan:
    """Read the installed SDK (never sends a request)."""
    openai = importlib.import_module("openai")
    resource_base = importlib.import_module("openai._resource").SyncAPIResource
    with warnings.catch_warnings():  # deprecated resources (the Assistants API) still count
        warnings.simplefilter("ignore")
        client = openai.OpenAI(api_key="sk-scan", base_url="http://127.0.0.1:9/v1")
        classes = _resource_classes(client, resource_base)
    calls: list[SdkCall] = []
    methods: set[str] = set()
    unreadable: list[str] = []
    for cls, dotted in sorted(classes.items(), key=lambda item: item[1]):
        for name, func in _methods(cls, resource_base, unreadable, dotted):
            operation = f"{dotted}.{name}"
            methods.add(operation)
            for shortcut, call in _calls_in(func):
                raw = _template_of(call.args[0]) if call.args else None
                if raw is None:
                    unreadable.append(operation)
                    continue
                template, query = _normalise(raw)
                calls.append(SdkCall(_method_of(shortcut, call), template, operation, query))
    version = str(getattr(openai, "__version__", "") or "")
    package_dir = str(getattr(openai, "__path__", [""])[0])
    calls.extend(_lib_calls(package_dir, unreadable))
    return SdkScan(version, tuple(calls), frozenset(methods), tuple(sorted(scan_helper_headers(package_dir))),
                   tuple(unreadable))


def main() -> int:
    result = scan()
    print(f"# openai {result.version}: {len(result.endpoints())} endpoints, {len(result.calls)} call sites")
    print("method\ttemplate\tquery\toperation")
    for call in sorted(result.calls, key=lambda c: (c.template, c.method, c.query, c.operation)):
        print(f"{call.method}\t{call.template}\t{call.query}\t{call.operation}")
    for header, value in result.helper_values:
        print(f"# helper header {header}: {value}")
    for where in result.unreadable:
        print(f"# unreadable path at {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

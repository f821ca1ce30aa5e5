"""The OTLP/JSON span shape as the report reads it: msgspec structs decoding a line (checked: a field of the wrong
type, a number out of range, an array nested in an array attribute make it a ``ValidationError``), and
:class:`SpanRecord`, one span flattened to its attributes and its process.
"""

# msgspec evaluates the decode structs' annotations at run time: Optional/Union work on Python 3.9, "X | None" does not:
# ruff: noqa: UP007, UP045
from __future__ import annotations

from typing import Annotated, Any, Optional, Union

import msgspec

# ---- the OTLP/JSON shape, as far as the report reads it (unknown fields are skipped by the decoder) ----
# Decoded in non-strict mode (numbers may come as strings, as OTLP/JSON writes 64-bit integers, and doubles as
# "NaN"/"Infinity"/"-Infinity", as the protobuf JSON mapping writes them) but checked: a field of the wrong type, a
# number out of range (a time past 2262 or negative, an integer past 64 bits, a number literal past a double), an
# array nested in an array attribute or values nested past the decoder's depth make the line unreadable, counted
# with a reason. What a value means to its reader (a NaN status code) is the reader's check (SpanReader's ``check``).
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
TimeNs = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class _Scalar(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """An element of an array attribute: a primitive (span and resource attributes hold no nested arrays)."""

    stringValue: Optional[str] = None
    boolValue: Optional[bool] = None
    intValue: Optional[Int64] = None
    doubleValue: Optional[float] = None
    bytesValue: Optional[str] = None


class _ArrayValue(msgspec.Struct, gc=False):
    values: list[_Scalar] = msgspec.field(default_factory=list)


class _AnyValue(msgspec.Struct, gc=False):
    stringValue: Optional[str] = None
    boolValue: Optional[bool] = None
    intValue: Optional[Int64] = None
    doubleValue: Optional[float] = None
    arrayValue: Optional[_ArrayValue] = None


class _KeyValue(msgspec.Struct, gc=False):
    key: str = ""
    value: _AnyValue = msgspec.field(default_factory=_AnyValue)


class _Span(msgspec.Struct, gc=False):
    name: str = ""
    startTimeUnixNano: TimeNs = 0
    endTimeUnixNano: TimeNs = 0
    attributes: list[_KeyValue] = msgspec.field(default_factory=list)


class _ScopeSpans(msgspec.Struct, gc=False):
    spans: list[_Span] = msgspec.field(default_factory=list)


class _Resource(msgspec.Struct, gc=False):
    attributes: list[_KeyValue] = msgspec.field(default_factory=list)


class _ResourceSpans(msgspec.Struct, gc=False):
    resource: _Resource = msgspec.field(default_factory=_Resource)
    scopeSpans: list[_ScopeSpans] = msgspec.field(default_factory=list)


class Document(msgspec.Struct, gc=False):
    resourceSpans: Optional[list[_ResourceSpans]] = None
    # other signals: skipped unparsed (an empty Raw means absent)
    resourceMetrics: msgspec.Raw = msgspec.Raw()
    resourceLogs: msgspec.Raw = msgspec.Raw()
    resourceProfiles: msgspec.Raw = msgspec.Raw()


DECODER = msgspec.json.Decoder(Document, strict=False)


def _scalar(v: Union[_AnyValue, _Scalar]) -> Any:
    if v.stringValue is not None:
        return v.stringValue
    if v.intValue is not None:
        return v.intValue
    if v.boolValue is not None:
        return v.boolValue
    if v.doubleValue is not None:
        return v.doubleValue
    return None


def _value(v: _AnyValue) -> Any:
    value = _scalar(v)
    if value is None and v.arrayValue is not None:
        return [_scalar(x) for x in v.arrayValue.values]
    return value


def flat_attributes(items: list[_KeyValue], keys: Optional[frozenset[str]]) -> dict[str, Any]:
    if keys is None:
        return {kv.key: _value(kv.value) for kv in items}
    out: dict[str, Any] = {}
    for kv in items:  # the hot loop of a report: strings, the common case, inline
        key = kv.key
        if key in keys:
            v = kv.value
            text = v.stringValue
            out[key] = text if text is not None else _value(v)
    return out


class SpanRecord:
    """One span from an OTLP JSON file, flattened to what the report reads."""

    __slots__ = ("_raw", "attributes", "end_ns", "name", "process", "resource", "source", "start_ns")

    def __init__(self, name: str, start_ns: int, end_ns: int, attributes: dict[str, Any],
                 resource: dict[str, Any], source: str = "", process: Optional[str] = None,
                 raw: Optional[list[_KeyValue]] = None) -> None:
        self.name = name
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.attributes = attributes
        self.resource = resource
        self.source = source
        #: which process emitted it (:func:`process_id`)
        self.process = process_id(resource, source) if process is None else process
        self._raw = raw  # every decoded attribute, for get() of those ``attributes`` does not hold

    def get(self, key: str) -> Any:
        """An attribute: from ``attributes`` (the ones read for every span), else converted on demand."""
        attributes = self.attributes
        if key in attributes or self._raw is None:
            return attributes.get(key)
        for kv in self._raw:
            if kv.key == key:
                value = attributes[key] = _value(kv.value)
                return value
        attributes[key] = None
        return None


def process_id(resource: dict[str, Any], source: str) -> str:
    """Which process emitted a span: ``service.instance.id``, else host and pid, else the file."""
    inst = resource.get("service.instance.id")
    if inst:
        return str(inst)
    pid = resource.get("process.pid")
    host = resource.get("host.name")
    if pid:
        return f"{host} pid {pid}" if host else f"pid {pid}"
    return source


def process_label(resource: dict[str, Any], source: str) -> str:
    """A short human label: service name, pid and host where known."""
    parts = [str(resource.get("service.name") or "")]
    if resource.get("process.pid"):
        parts.append(f"pid {resource['process.pid']}")
    if resource.get("host.name"):
        parts.append(f"@{resource['host.name']}")
    label = " ".join(p for p in parts if p)
    return label or process_id(resource, source)

"""Stream results keep their span open until the stream is exhausted, closed or fails mid-way.

The SDK returns ``Stream``/``AsyncStream`` objects from ``request`` before any event is read; the
proxies below end the call's span when iteration stops (normally, by ``close()``, by leaving a
``with`` block, or with an error such as an SSE ``error`` event) and are otherwise transparent.
Each proxy is given the call's state and the function that finishes it; it knows nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Callable

import wrapt

from .safety import report_internal_error

#: ``finish(state, response=..., exc=...)``: records the call's outcome and ends its span (once).
Finish = Callable[..., None]


def _finish(proxy: Any, exc: BaseException | None = None) -> None:
    try:
        state = proxy._self_state
        proxy._self_finish(state, response=state.last_response, exc=exc)
    except Exception as internal:  # noqa: BLE001
        report_internal_error("stream.finish", internal)


class SyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """Transparent proxy for ``openai.Stream``."""

    def __init__(self, wrapped: Any, state: Any, finish: Finish) -> None:
        super().__init__(wrapped)
        self._self_state = state
        self._self_finish = finish

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self.__wrapped__
        except GeneratorExit:
            _finish(self)
            raise
        except BaseException as exc:
            _finish(self, exc)
            raise
        _finish(self)

    def __next__(self) -> Any:
        try:
            return self.__wrapped__.__next__()
        except StopIteration:
            _finish(self)
            raise
        except BaseException as exc:
            _finish(self, exc)
            raise

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            _finish(self)

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            _finish(self)

    def __del__(self) -> None:
        state = getattr(self, "_self_state", None)
        if state is not None and not state.finished:
            _finish(self)


class AsyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """Transparent proxy for ``openai.AsyncStream``."""

    def __init__(self, wrapped: Any, state: Any, finish: Finish) -> None:
        super().__init__(wrapped)
        self._self_state = state
        self._self_finish = finish

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for item in self.__wrapped__:
                yield item
        except GeneratorExit:
            _finish(self)
            raise
        except BaseException as exc:
            _finish(self, exc)
            raise
        _finish(self)

    async def __anext__(self) -> Any:
        try:
            return await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            _finish(self)
            raise
        except BaseException as exc:
            _finish(self, exc)
            raise

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            _finish(self)

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            _finish(self)

    def __del__(self) -> None:
        state = getattr(self, "_self_state", None)
        if state is not None and not state.finished:
            _finish(self)

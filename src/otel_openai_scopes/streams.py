"""Stream results keep their span open until the stream is exhausted, closed or fails mid-way.

The SDK returns ``Stream``/``AsyncStream`` objects from ``request`` before any event is read; the
proxies below end the call's span when iteration stops (normally, by ``close()``, by leaving a
``with`` block, or with an error such as an SSE ``error`` event) and are otherwise transparent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import wrapt

from .safety import report_internal_error


def _finish(state: Any, exc: BaseException | None = None) -> None:
    try:
        state.recorder.finish(state, response=state.last_response, exc=exc)
    except Exception as internal:  # noqa: BLE001
        report_internal_error("stream.finish", internal)


class SyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """Transparent proxy for ``openai.Stream``."""

    def __init__(self, wrapped: Any, state: Any) -> None:
        super().__init__(wrapped)
        self._self_state = state

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self.__wrapped__
        except GeneratorExit:
            _finish(self._self_state)
            raise
        except BaseException as exc:
            _finish(self._self_state, exc)
            raise
        _finish(self._self_state)

    def __next__(self) -> Any:
        try:
            return self.__wrapped__.__next__()
        except StopIteration:
            _finish(self._self_state)
            raise
        except BaseException as exc:
            _finish(self._self_state, exc)
            raise

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            _finish(self._self_state)

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            _finish(self._self_state)

    def __del__(self) -> None:
        state = getattr(self, "_self_state", None)
        if state is not None and not state.finished:
            _finish(state)


class AsyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """Transparent proxy for ``openai.AsyncStream``."""

    def __init__(self, wrapped: Any, state: Any) -> None:
        super().__init__(wrapped)
        self._self_state = state

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for item in self.__wrapped__:
                yield item
        except GeneratorExit:
            _finish(self._self_state)
            raise
        except BaseException as exc:
            _finish(self._self_state, exc)
            raise
        _finish(self._self_state)

    async def __anext__(self) -> Any:
        try:
            return await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            _finish(self._self_state)
            raise
        except BaseException as exc:
            _finish(self._self_state, exc)
            raise

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            _finish(self._self_state)

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            _finish(self._self_state)

    def __del__(self) -> None:
        state = getattr(self, "_self_state", None)
        if state is not None and not state.finished:
            _finish(state)

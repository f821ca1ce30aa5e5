"""The fake API's HTTP side: a threaded server on 127.0.0.1 whose handler only reads a request, asks
:func:`.routes.handle` for the reply and writes it (JSON, bytes, or a chunked SSE stream)."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .identity import TOKEN_PATH
from .routes import Reply, Request, handle
from .sse import Stream
from .state import FakeState, KeyGrant


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up mid-connection (closed streams, killed tests) are normal here, not errors."""

    request_queue_size = 4096  # thousands of concurrent asyncio tasks connect at once in the load tests
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 fake: FakeState | None = None) -> None:
        self.fake = fake
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _encode(body: Any) -> bytes:
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return b"" if body is None else json.dumps(body).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK stall each
    # response by ~40 ms on loopback.
    disable_nagle_algorithm = True
    server: _QuietServer

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr logging
        pass

    def do_GET(self) -> None:  # every method goes through one handler
        self._handle()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake = self.server.fake
        assert fake is not None, "a handler needs the server's state"
        reply = handle(fake, Request(self.command, self.path, headers, body))
        if isinstance(reply.body, Stream):
            self._stream(reply, reply.body)
        else:
            self._send(reply)

    def _head(self, reply: Reply, content_type: str) -> None:
        self.send_response(reply.status)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        if content_type:
            self.send_header("Content-Type", content_type)

    def _send(self, reply: Reply) -> None:
        data = _encode(reply.body)
        self._head(reply, reply.content_type if data or reply.content_type else "")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, reply: Reply, stream: Stream) -> None:
        self._head(reply, "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for frame in stream.frames():
            self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


class FakeOpenAI(FakeState):
    """The fake API. ``with FakeOpenAI() as fake: fake.base_url`` serves it on loopback until the block ends."""

    def __init__(self, keys: dict[str, KeyGrant] | None = None, seed: int = 1234, error_code_style: str = "2024",
                 port: int = 0) -> None:
        super().__init__(keys, seed, error_code_style)
        self._port = port
        self._server: _QuietServer | None = None

    def start(self) -> FakeOpenAI:
        self._server = _QuietServer(("127.0.0.1", self._port), _Handler, self)
        threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def token_exchange_url(self) -> str:
        """Where the SDK's workload identity exchanges its subject token (see :meth:`serve_token_exchange`)."""
        return f"http://127.0.0.1:{self.port}{TOKEN_PATH}"

    def serve_token_exchange(self, client: Any) -> Any:
        """Point a workload-identity client (openai 3.x, ``workload_identity=...``) at this server's token exchange.

        The SDK takes no exchange URL: its ``WorkloadIdentityAuth`` has one (``token_exchange_url``, default
        ``DEFAULT_TOKEN_EXCHANGE_URL``), built with the client; this sets it. Returns the client.
        """
        auth = getattr(client, "_workload_identity_auth", None)
        if auth is None or not hasattr(auth, "token_exchange_url"):
            raise TypeError("not a client with a subject-token workload identity (openai >= 3 with "
                            "workload_identity=...)")
        auth.token_exchange_url = self.token_exchange_url
        return client

"""Early refusal of oversized and slow HTTP requests, shared by the control and data planes.

Two defences sit in front of the Starlette apps:

* :class:`BodyLimitMiddleware` answers 413 from ``Content-Length`` before a byte of the body is read,
  and counts streamed (chunked) bodies so no more than the limit is ever buffered.
* :func:`http_protocol_class` is uvicorn's HTTP/1.1 protocol with a deadline on each request head: a
  client that trickles its request line and headers (slowloris) is cut off instead of holding a
  connection forever. uvicorn's own keep-alive timer stops at the first byte of a request, so without
  this a client sending one byte a second is never timed out.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import TYPE_CHECKING, Any

import orjson

from pinecone_rag.errors import PayloadTooLargeError

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    ErrorBody = Callable[[PayloadTooLargeError], dict[str, Any]]

REQUEST_HEAD_TIMEOUT = 10.0
"""Seconds a client may take to send one request's line and headers."""

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 24\r\nconnection: close\r\n\r\nRequest head timed out.\n"
)


def too_large(size: int | str, limit: int) -> PayloadTooLargeError:
    """The 413 error for a body of ``size`` bytes."""
    return PayloadTooLargeError(f"The request body is {size} bytes; the limit is {limit}.")


class BodyLimitMiddleware:
    """ASGI middleware: refuse bodies over ``max_bytes`` without buffering them.

    A declared ``Content-Length`` over the limit is answered at once (``Connection: close``, so the
    server does not go on reading the body it refused). Bodies without a length are counted as they
    arrive; the chunk that crosses the limit raises :class:`PayloadTooLargeError` out of ``receive``,
    which the app's endpoints turn into their usual error shape.

    Args:
        app: The wrapped ASGI app.
        max_bytes: The largest body accepted.
        error_body: Renders the 413 JSON body in the plane's error shape.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, error_body: ErrorBody) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.error_body = error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value.decode("latin-1").strip()
                if declared.isdigit() and int(declared) > self.max_bytes:
                    await self._refuse(send, too_large(declared, self.max_bytes))
                    return
        limit = self.max_bytes
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large(f"over {limit}", limit)
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, send: Send, error: PayloadTooLargeError) -> None:
        body = orjson.dumps(self.error_body(error))
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


@functools.cache
def http_protocol_class(head_timeout: float = REQUEST_HEAD_TIMEOUT) -> Any:
    """The httptools protocol of uvicorn with a request-head deadline and request targets over 64 KiB.

    Falls back to the name ``"h11"`` (no head deadline) when httptools is not installed.
    """
    # httptools parses in C; h11 is the pure-Python fallback uvicorn always has.
    if not importlib.util.find_spec("httptools"):
        return "h11"
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: PLC0415 - needs httptools

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """httptools with a deadline per request head and long request targets.

        httptools parses URLs with 16-bit offsets, so a longer target fails ("Invalid HTTP request
        received."), yet a fetch of 1000 ids of 512 characters sends ~0.5 MB of query string. Such a
        target's query is split off before uvicorn parses it and restored in the scope (the app task
        has not run yet).
        """

        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            # A connection that never sends a byte is held by no other timer.
            self._arm_head_timer()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm_head_timer()

        def on_headers_complete(self) -> None:
            self._cancel_head_timer()
            if len(self.url) <= 0xFFFF:
                super().on_headers_complete()
                return
            path, _, query = self.url.partition(b"?")
            self.url = path
            super().on_headers_complete()
            self.scope["query_string"] = query

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def _arm_head_timer(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(head_timeout, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                self.transport.write(_TIMEOUT_RESPONSE)
                self.transport.close()

    return GuardedHttpToolsProtocol

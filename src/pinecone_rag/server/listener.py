"""One port, two protocols: HTTP/1.1 REST and h2c gRPC on each index's data-plane port.

The official SDKs use one ``host`` for REST and gRPC, so each index port must speak both. A connection
that opens with the HTTP/2 preface is spliced, byte for byte, to the index's grpcio server on its own
loopback port; anything else is handed to uvicorn's HTTP/1.1 protocol in-process. The splice costs a
little latency and throughput (see bench/RESULTS.md), so the engine also advertises the direct gRPC port
(``x-pinecone-rag-grpc-port``) for clients that can use it.

With TLS the listener's socket is wrapped by asyncio's ``ssl`` (ALPN ``h2`` and ``http/1.1``), so the
protocol sees decrypted bytes and sniffs them exactly as in plaintext; the splice then goes to a
plaintext grpcio port bound to loopback only. Terminating TLS here keeps one port for both protocols
(grpcio cannot share a port with HTTP/1.1) and one certificate loader for every transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn
    from uvicorn.server import ServerState

logger = logging.getLogger(__name__)

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class _Upstream(asyncio.Protocol):
    """The grpcio side of a spliced connection."""

    def __init__(self, downstream: SniffingProtocol) -> None:
        self.downstream = downstream
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        client = self.downstream.transport
        if client is not None and not client.is_closing():
            client.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.downstream.upstream_lost()

    def pause_writing(self) -> None:
        if self.downstream.transport is not None:
            self.downstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.downstream.transport is not None:
            self.downstream.transport.resume_reading()


class SniffingProtocol(asyncio.Protocol):
    """Decides per connection between uvicorn's HTTP/1.1 protocol and a splice to grpcio."""

    def __init__(
        self,
        *,
        config: uvicorn.Config,
        server_state: ServerState,
        grpc_address: tuple[str, int],
        splices: set[SniffingProtocol],
        sniff_timeout: float = 10.0,
    ) -> None:
        self._config = config
        self._sniff_timeout = sniff_timeout
        self._sniff_timer: asyncio.TimerHandle | None = None
        self._server_state = server_state
        self._grpc_address = grpc_address
        self._splices = splices
        self._buffer = b""
        self._upstream: _Upstream | None = None
        self._spliced = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        # A client that connects and then sends nothing, or a byte at a time, must not hold the
        # connection (and its buffer) forever: the protocol is decided within the deadline or never.
        self._sniff_timer = asyncio.get_running_loop().call_later(self._sniff_timeout, self._sniff_timed_out)

    def _sniff_timed_out(self) -> None:
        self._sniff_timer = None
        if self.transport is not None and not self._spliced:
            self.transport.close()

    def _decided(self) -> None:
        if self._sniff_timer is not None:
            self._sniff_timer.cancel()
            self._sniff_timer = None

    def data_received(self, data: bytes) -> None:
        if self._spliced:
            if self._upstream is not None and self._upstream.transport is not None:
                self._upstream.transport.write(data)
            else:
                self._buffer += data
            return
        self._buffer += data
        if len(self._buffer) < len(H2_PREFACE) and H2_PREFACE.startswith(self._buffer):
            return
        self._decided()
        if self._buffer.startswith(H2_PREFACE):
            self._start_splice()
        else:
            self._hand_to_http()

    def _hand_to_http(self) -> None:
        assert self.transport is not None
        protocol: Any = self._config.http_protocol_class(  # type: ignore[call-arg]
            config=self._config, server_state=self._server_state, app_state={}
        )
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        protocol.data_received(self._buffer)
        self._buffer = b""

    def _start_splice(self) -> None:
        assert self.transport is not None
        self._spliced = True
        self._splices.add(self)
        self.transport.pause_reading()
        task = asyncio.get_running_loop().create_task(self._connect())
        task.add_done_callback(_log_failure)

    async def _connect(self) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(lambda: _Upstream(self), *self._grpc_address)
        except OSError:
            logger.warning("gRPC backend %s:%d unreachable", *self._grpc_address)
            self.transport.close()
            return
        self._upstream = upstream
        assert upstream.transport is not None
        if self.transport.is_closing():
            upstream.transport.close()
            return
        upstream.transport.write(self._buffer)
        self._buffer = b""
        self.transport.resume_reading()

    def pause_writing(self) -> None:
        if self._upstream is not None and self._upstream.transport is not None:
            self._upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self._upstream is not None and self._upstream.transport is not None:
            self._upstream.transport.resume_reading()

    def eof_received(self) -> bool | None:
        if self._upstream is not None and self._upstream.transport is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self._upstream.transport.write_eof()
            # Keep the client side half-open for grpcio's answer; TLS has no half-close, so asyncio
            # closes that side whatever is returned (and warns if True is).
            return self.transport is None or self.transport.get_extra_info("sslcontext") is None
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._decided()
        self._splices.discard(self)
        if self._upstream is not None and self._upstream.transport is not None:
            self._upstream.transport.close()

    def upstream_lost(self) -> None:
        """The grpcio side went away: close the client side too."""
        if self.transport is not None:
            self.transport.close()

    def close(self) -> None:
        """Close both sides (server shutdown or index deletion)."""
        if self.transport is not None:
            self.transport.close()
        if self._upstream is not None and self._upstream.transport is not None:
            self._upstream.transport.close()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("gRPC splice failed", exc_info=task.exception())

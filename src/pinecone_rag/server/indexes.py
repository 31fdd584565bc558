"""Index lifecycle: each index's engine, its data-plane port (REST + gRPC) and its gRPC server.

Ports are stable across restarts: the control database remembers each index's port, and a restart binds
the same one (falling back to a new port, recorded, only if it was taken by someone else meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import shutil
import socket
import sqlite3
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
import uvicorn
from uvicorn.server import ServerState

from pinecone_rag.errors import AlreadyExistsError, NotFoundError, ResourceExhaustedError
from pinecone_rag.server.data_grpc import MAX_MESSAGE_BYTES, VectorServiceHandlers
from pinecone_rag.server.data_rest import MAX_BODY_BYTES, build_data_app
from pinecone_rag.server.data_service import DataService
from pinecone_rag.server.engine import IndexEngine
from pinecone_rag.server.http_limits import http_protocol_class
from pinecone_rag.server.listener import SniffingProtocol
from pinecone_rag.server.records import IndexSpec

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from pinecone_rag.server.auth import KeyRing
    from pinecone_rag.server.control_db import ControlDatabase, IndexRecord
    from pinecone_rag.server.settings import ServerSettings

ALPN_PROTOCOLS = ("h2", "http/1.1")

logger = logging.getLogger(__name__)

INDEXES_DIR = "indexes"
MAX_PORT_PROBES = 1000
# Long fetch URLs (1000 ids of 512 characters) need far more than h11's default 16 KiB.
MAX_HTTP_HEAD_BYTES = 4 * 1024 * 1024


@dataclass
class IndexHandle:
    """A live index: its record, engine and transports."""

    record: IndexRecord
    engine: IndexEngine
    port: int
    grpc_port: int
    grpc_server: grpc.Server
    listener: asyncio.Server
    http_state: ServerState
    splices: set[SniffingProtocol] = field(default_factory=set)


class IndexManager:
    """Opens, creates and deletes indexes for the control plane."""

    def __init__(
        self,
        settings: ServerSettings,
        database: ControlDatabase,
        keyring: KeyRing,
        executor: ThreadPoolExecutor,
    ) -> None:
        self._settings = settings
        self._database = database
        self._keyring = keyring
        self._executor = executor
        self._handles: dict[tuple[str, str], IndexHandle] = {}
        self._lock = asyncio.Lock()
        self._root = settings.data_dir / INDEXES_DIR
        self._root.mkdir(parents=True, exist_ok=True)
        self._tls = server_tls_context(settings)
        self._grpc_credentials: grpc.ServerCredentials | None = None
        if settings.tls_cert is not None and settings.tls_key is not None:
            self._grpc_credentials = grpc.ssl_server_credentials(
                [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())]
            )

    # ---------------------------------------------------------------------------------------- queries
    def get(self, project_id: str, name: str) -> IndexHandle:
        """The live index ``name`` of a project, or NotFoundError."""
        handle = self._handles.get((project_id, name))
        if handle is None:
            raise NotFoundError(f"Index {name} not found.")
        return handle

    def list(self, project_id: str) -> list[IndexHandle]:
        """The project's indexes by name."""
        return sorted(
            (h for (project, _), h in self._handles.items() if project == project_id),
            key=lambda h: h.record.name,
        )

    # -------------------------------------------------------------------------------------- lifecycle
    async def open_all(self) -> None:
        """Open every index the database knows (at startup)."""
        for leftover in self._root.glob("*.deleting"):
            shutil.rmtree(leftover, ignore_errors=True)
        for record in self._database.indexes():
            await self._open(record)

    async def create(self, record: IndexRecord) -> IndexHandle:
        """Create and open a new index (AlreadyExistsError if the project has one by that name)."""
        async with self._lock:
            if (record.project_id, record.name) in self._handles:
                raise AlreadyExistsError("Resource already exists.")
            try:
                self._database.insert_index(record)
            except sqlite3.IntegrityError as exc:
                raise AlreadyExistsError("Resource already exists.") from exc
            try:
                return await self._open(record)
            except BaseException:
                self._database.delete_index(record.id)
                raise

    def configure(self, handle: IndexHandle, **changes: Any) -> IndexRecord:
        """Persist changed settings of an index."""
        handle.record = self._database.update_index(handle.record, **changes)
        return handle.record

    async def delete(self, handle: IndexHandle) -> None:
        """Stop an index's transports, forget it, and delete its data (synchronously)."""
        async with self._lock:
            self._handles.pop((handle.record.project_id, handle.record.name), None)
            self._database.delete_index(handle.record.id)
        await self._close(handle)
        await asyncio.get_running_loop().run_in_executor(None, handle.engine.destroy)

    async def close(self) -> None:
        """Stop every index (acknowledged writes are already durable)."""
        handles = list(self._handles.values())
        self._handles.clear()
        for handle in handles:
            await self._close(handle)
            handle.engine.close()

    # -------------------------------------------------------------------------------------- internals
    def _bind(self, record: IndexRecord) -> socket.socket:
        settings = self._settings
        candidates: list[int] = []
        if record.port:
            candidates.append(record.port)
        if settings.data_port_start == 0:
            candidates.append(0)
        else:
            used = self._database.used_ports() | {settings.port}
            candidates.extend(
                p
                for p in range(settings.data_port_start, settings.data_port_start + MAX_PORT_PROBES)
                if p not in used
            )
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        for port in candidates:
            # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto says TCP, and
            # without it every response pays ~40 ms of Nagle + delayed ACK.
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((settings.host, port))
            except OSError as exc:
                sock.close()
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            sock.listen(512)
            sock.setblocking(False)
            return sock
        raise ResourceExhaustedError("No free port is left for a new index data plane.")

    async def _open(self, record: IndexRecord) -> IndexHandle:
        spec = IndexSpec(record.dimension, record.metric, record.vector_type)
        directory: Path = self._root / record.id
        loop = asyncio.get_running_loop()
        engine = await loop.run_in_executor(None, IndexEngine, directory, spec, self._settings.engine)
        service = DataService(engine)
        grpc_server = grpc.server(
            self._executor,
            options=[
                # Requests are bounded like REST bodies; answers (top-k with values) may be larger.
                ("grpc.max_receive_message_length", MAX_BODY_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        grpc_server.add_generic_rpc_handlers(
            (VectorServiceHandlers(service, self._keyring, record.project_id).generic_handler(),)
        )
        if self._grpc_credentials is None:
            # Plaintext: one grpcio port, spliced to from the shared port and advertised for direct use.
            grpc_port = self._bind_direct(grpc_server, record.grpc_port)
            splice_port = grpc_port
        else:
            # TLS: the listener terminates TLS and splices plaintext to a loopback-only port; the
            # advertised direct port speaks TLS with the same certificate.
            splice_port = grpc_server.add_insecure_port("127.0.0.1:0")
            grpc_port = self._bind_direct(grpc_server, record.grpc_port)
        grpc_server.start()
        sock = self._bind(record)
        port = sock.getsockname()[1]
        if (port, grpc_port) != (record.port, record.grpc_port):
            record = self._database.update_index(record, port=port, grpc_port=grpc_port)
        config = uvicorn.Config(
            build_data_app(service, self._keyring, record.project_id, embed=record.embed),
            http=http_protocol_class(self._settings.request_head_timeout),
            lifespan="off",
            log_config=None,
            access_log=False,
            h11_max_incomplete_event_size=MAX_HTTP_HEAD_BYTES,
        )
        config.load()
        state = ServerState()
        splices: set[SniffingProtocol] = set()
        if self._grpc_credentials is None:
            grpc_address = (self._grpc_host(), splice_port)
        else:
            grpc_address = ("127.0.0.1", splice_port)
        head_timeout = self._settings.request_head_timeout
        listener = await loop.create_server(
            lambda: SniffingProtocol(
                config=config,
                server_state=state,
                grpc_address=grpc_address,
                splices=splices,
                sniff_timeout=head_timeout,
            ),
            sock=sock,
            ssl=self._tls,
            ssl_handshake_timeout=head_timeout if self._tls is not None else None,
        )
        handle = IndexHandle(record, engine, port, grpc_port, grpc_server, listener, state, splices)
        self._handles[(record.project_id, record.name)] = handle
        return handle

    def _bind_direct(self, grpc_server: grpc.Server, saved: int | None) -> int:
        """Bind the advertised direct gRPC port: the index's previous one when it is free, else a new one.

        Clients cache the direct port (ours from describe_index), so keeping it across restarts saves
        them a failed connection and a fallback to the shared port.
        """
        address = self._grpc_host()
        for port in ([saved] if saved else []) + [0]:
            try:
                if self._grpc_credentials is None:
                    bound = grpc_server.add_insecure_port(f"{address}:{port}")
                else:
                    bound = grpc_server.add_secure_port(f"{address}:{port}", self._grpc_credentials)
            except RuntimeError:  # grpcio raises when the port is taken (older versions return 0)
                if not port:
                    raise
                bound = 0
            if bound:
                return bound
        raise ResourceExhaustedError("No free port is left for an index's gRPC data plane.")

    def _grpc_host(self) -> str:
        host = self._settings.host
        return "127.0.0.1" if host in ("localhost", "") else host

    async def _close(self, handle: IndexHandle) -> None:
        handle.listener.close()
        for protocol in list(handle.splices):
            protocol.close()
        for connection in list(handle.http_state.connections):
            connection.shutdown()
        stopped = handle.grpc_server.stop(grace=0.5)
        await asyncio.get_running_loop().run_in_executor(None, stopped.wait)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(handle.listener.wait_closed(), timeout=2)


def server_tls_context(settings: ServerSettings) -> ssl.SSLContext | None:
    """The TLS context of the data-plane listeners (None without ``tls_cert``).

    ALPN offers ``h2`` and ``http/1.1``: gRPC clients insist on ``h2`` being selected, REST clients
    offer only ``http/1.1``, and the listener still decides by the first decrypted bytes.
    """
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    context.set_alpn_protocols(list(ALPN_PROTOCOLS))
    return context

"""``LocalServer``: the whole engine in one process, on its own event-loop thread.

Used by ``pinecone-rag serve``, by ``PineconeClient.local``, and by tests (``port=0`` everywhere)::

    from pinecone_rag.server import LocalServer

    with LocalServer("./pinecone-data", port=0) as server:
        print(server.url)   # http://127.0.0.1:41234, the control plane
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from pinecone_rag.errors import ConfigurationError
from pinecone_rag.server.auth import KeyRing
from pinecone_rag.server.blas import limit_blas_threads
from pinecone_rag.server.control_api import build_control_app
from pinecone_rag.server.control_db import ControlDatabase
from pinecone_rag.server.http_limits import http_protocol_class
from pinecone_rag.server.indexes import IndexManager
from pinecone_rag.server.lock import DataDirLock
from pinecone_rag.server.open_files import raise_open_files_limit
from pinecone_rag.server.settings import ServerSettings, is_loopback

if TYPE_CHECKING:
    import os
    from types import TracebackType

logger = logging.getLogger(__name__)

CONTROL_DB = "control.sqlite3"
_START_TIMEOUT = 60.0


class LocalServer:
    """A Pinecone-compatible engine: control plane on ``port``, one data-plane port per index.

    Args:
        data_dir: Where everything is stored; reopening the same directory restores every index.
        host: The address to bind. A non-loopback address requires API keys.
        port: The control-plane port; 0 picks a free one (see :attr:`port` after :meth:`start`).
        api_keys: Keys of the default project (``PINECONE_RAG_API_KEYS`` adds more).
        data_port_start: First port for index data planes; defaults to ``port + 1``, or to free ports
            (0) when ``port`` is 0.
        tls_cert: A PEM certificate file; with ``tls_key`` every port speaks TLS (``https://`` URLs and
            index hosts, gRPC over TLS).
        tls_key: The PEM private key of ``tls_cert``.
        settings: Full settings; when given, the other arguments are ignored.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 5080,
        api_keys: tuple[str, ...] | list[str] = (),
        data_port_start: int | None = None,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        settings: ServerSettings | None = None,
        **options: Any,
    ) -> None:
        if settings is None:
            start = data_port_start if data_port_start is not None else (0 if port == 0 else port + 1)
            if tls_cert is not None or tls_key is not None:
                options["tls_cert"] = None if tls_cert is None else Path(tls_cert)
                options["tls_key"] = None if tls_key is None else Path(tls_key)
            settings = ServerSettings.from_env(
                data_dir, host=host, port=port, api_keys=tuple(api_keys), data_port_start=start, **options
            )
        self.settings = settings
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._port: int | None = None
        self.database: ControlDatabase | None = None
        self.manager: IndexManager | None = None
        self._lock = DataDirLock(Path(settings.data_dir))

    # ---------------------------------------------------------------------------------------- public
    @property
    def port(self) -> int:
        """The bound control-plane port."""
        if self._port is None:
            raise RuntimeError("The server is not running.")
        return self._port

    @property
    def url(self) -> str:
        """The control-plane URL, e.g. ``http://127.0.0.1:5080`` (``https://`` with TLS)."""
        return f"{self.settings.scheme}://{self.host}"

    @property
    def host(self) -> str:
        """The control-plane address without a scheme, e.g. ``127.0.0.1:5080``."""
        host = self.settings.public_host
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{self.port}"

    def start(self) -> LocalServer:
        """Start serving in a background thread; returns once every port is accepting connections."""
        if self._thread is not None:
            raise RuntimeError("The server is already running.")
        self._check_exposure()
        limit_blas_threads(self.settings.blas_threads)
        raise_open_files_limit()  # each mapped cluster file holds a descriptor
        self._lock.acquire()
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="pinecone-rag-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise RuntimeError("The local engine did not start within a minute.")
        error = self._startup_error()
        if error is not None:
            self._thread.join()
            self._thread = None
            self._lock.release()
            raise error
        return self

    def stop(self) -> None:
        """Stop serving and close every file (idempotent)."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join()
        self._thread = None
        self._port = None
        self._lock.release()

    def wait(self) -> None:
        """Block until the server stops (used by ``pinecone-rag serve``)."""
        thread = self._thread
        if thread is not None:
            thread.join()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"url={self.url!r}" if self._port else "stopped"
        return f"LocalServer({str(self.settings.data_dir)!r}, {state})"

    # ------------------------------------------------------------------------------------- internals
    def _startup_error(self) -> BaseException | None:
        # A method, not an attribute read: the server thread sets it, which type narrowing cannot see.
        return self._error

    def _check_exposure(self) -> None:
        if is_loopback(self.settings.host) or self.settings.api_keys:
            return
        database = ControlDatabase(Path(self.settings.data_dir) / CONTROL_DB)
        try:
            has_keys = database.has_active_keys()
        finally:
            database.close()
        if not has_keys:
            raise ConfigurationError(
                f"Refusing to serve on {self.settings.host} without API keys: pass --api-key, set "
                "PINECONE_RAG_API_KEYS, or create one with `pinecone-rag keys create`."
            )

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            logger.exception("the local engine stopped with an error")
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        settings = self.settings
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        database = ControlDatabase(data_dir / CONTROL_DB)
        self.database = database
        keyring = KeyRing(database, settings.api_keys)
        executor = ThreadPoolExecutor(
            max_workers=settings.grpc_workers, thread_name_prefix="pinecone-rag-grpc"
        )
        manager = IndexManager(settings, database, keyring, executor)
        self.manager = manager
        control: uvicorn.Server | None = None
        serve_task: asyncio.Task[None] | None = None
        try:
            await manager.open_all()
            family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # see indexes._bind
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((settings.host, settings.port))
            self._port = sock.getsockname()[1]
            config = uvicorn.Config(
                build_control_app(settings, keyring, manager),
                lifespan="off",
                log_config=None,
                log_level=settings.log_level,
                access_log=False,
                http=http_protocol_class(settings.request_head_timeout),
                ssl_certfile=settings.tls_cert,
                ssl_keyfile=settings.tls_key,
            )
            control = uvicorn.Server(config)
            serve_task = asyncio.create_task(control.serve(sockets=[sock]))
            while not control.started:
                if serve_task.done():
                    serve_task.result()
                    raise RuntimeError("The control plane stopped during start-up.")
                await asyncio.sleep(0.005)
            self._ready.set()
            await self._stop.wait()
        finally:
            if control is not None and serve_task is not None:
                control.should_exit = True
                await serve_task
            await manager.close()
            executor.shutdown(wait=True)
            database.close()


def with_settings(server: LocalServer, **changes: Any) -> LocalServer:
    """A stopped copy of ``server`` with some settings changed (handy for restart tests)."""
    return LocalServer(server.settings.data_dir, settings=replace(server.settings, **changes))

"""The control plane's own database (SQLite): projects, API keys and indexes.

It is the source of truth for which indexes exist; index data lives in per-index directories named by
index id. Keys are stored as SHA-256 hashes: the secret is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from pathlib import Path

    from pinecone_rag.server.records import Metric, VectorType

SCHEMA_VERSION = 1
DEFAULT_PROJECT = "default"
KEY_PREFIX = "pcrag_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS indexes (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    dimension INTEGER,
    metric TEXT NOT NULL,
    vector_type TEXT NOT NULL,
    spec TEXT NOT NULL,
    tags TEXT NOT NULL,
    deletion_protection TEXT NOT NULL,
    port INTEGER,
    created_at REAL NOT NULL,
    embed TEXT,
    grpc_port INTEGER,
    UNIQUE (project_id, name)
);
"""
# Columns added after the first release, with their definitions: added to older databases at open.
_ADDED_INDEX_COLUMNS = {"embed": "TEXT", "grpc_port": "INTEGER"}


def hash_key(secret: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Project:
    """A project: API keys and indexes belong to one."""

    id: str
    name: str


@dataclass(frozen=True)
class ApiKey:
    """A stored API key (never its secret)."""

    id: str
    project: str
    name: str
    hint: str
    created_at: float
    revoked: bool


@dataclass(frozen=True)
class IndexRecord:
    """An index as the control plane stores it."""

    id: str
    project_id: str
    name: str
    dimension: int | None
    metric: Metric
    vector_type: VectorType
    spec: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)
    deletion_protection: str = "disabled"
    port: int | None = None
    created_at: float = 0.0
    embed: dict[str, Any] | None = None
    """The integrated-embedding config (model, field_map, ...) of an index made for a model."""
    grpc_port: int | None = None
    """The direct gRPC port last bound, bound again at the next start when it is free."""


def _index_from_row(row: sqlite3.Row) -> IndexRecord:
    return IndexRecord(
        id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        dimension=row["dimension"],
        metric=row["metric"],
        vector_type=row["vector_type"],
        spec=orjson.loads(row["spec"]),
        tags=orjson.loads(row["tags"]),
        deletion_protection=row["deletion_protection"],
        port=row["port"],
        created_at=row["created_at"],
        embed=orjson.loads(row["embed"]) if row["embed"] else None,
        grpc_port=row["grpc_port"],
    )


class ControlDatabase:
    """Thread-safe access to the control-plane database file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)
            present = {row["name"] for row in self._conn.execute("PRAGMA table_info(indexes)")}
            for column, definition in _ADDED_INDEX_COLUMNS.items():
                if column not in present:
                    self._conn.execute(f"ALTER TABLE indexes ADD COLUMN {column} {definition}")
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self._conn.execute(
                "INSERT OR IGNORE INTO projects (id, name, created_at) VALUES (?, ?, ?)",
                (DEFAULT_PROJECT, DEFAULT_PROJECT, time.time()),
            )

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, args).fetchone()
            return row

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, args).fetchall())

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return self._conn.execute(sql, args).rowcount

    # --------------------------------------------------------------------------------------- projects
    def project(self, name: str) -> Project | None:
        """The project called ``name``."""
        row = self._one("SELECT id, name FROM projects WHERE name = ?", (name,))
        return None if row is None else Project(row["id"], row["name"])

    def ensure_project(self, name: str) -> Project:
        """The project called ``name``, created if missing."""
        existing = self.project(name)
        if existing is not None:
            return existing
        project_id = name if name == DEFAULT_PROJECT else f"{name}-{uuid.uuid4().hex[:7]}"
        self._run(
            "INSERT OR IGNORE INTO projects (id, name, created_at) VALUES (?, ?, ?)",
            (project_id, name, time.time()),
        )
        created = self.project(name)
        assert created is not None
        return created

    def project_by_id(self, project_id: str) -> Project | None:
        """The project with id ``project_id``."""
        row = self._one("SELECT id, name FROM projects WHERE id = ?", (project_id,))
        return None if row is None else Project(row["id"], row["name"])

    # --------------------------------------------------------------------------------------- API keys
    def create_key(self, project: str = DEFAULT_PROJECT, name: str = "default") -> tuple[ApiKey, str]:
        """Create an API key in ``project``; returns the stored key and its secret (shown only now)."""
        owner = self.ensure_project(project)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(uuid.uuid4().hex[:12], owner.name, name, secret[-4:], time.time(), revoked=False)
        self._run(
            "INSERT INTO api_keys (id, project_id, name, key_hash, hint, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (key.id, owner.id, name, hash_key(secret), key.hint, key.created_at),
        )
        return key, secret

    def list_keys(self) -> list[ApiKey]:
        """Every stored key, revoked ones included."""
        rows = self._all(
            "SELECT k.id, p.name AS project, k.name, k.hint, k.created_at, k.revoked_at "
            "FROM api_keys k JOIN projects p ON p.id = k.project_id ORDER BY k.created_at"
        )
        return [
            ApiKey(r["id"], r["project"], r["name"], r["hint"], r["created_at"], r["revoked_at"] is not None)
            for r in rows
        ]

    def revoke_key(self, key_id: str) -> bool:
        """Revoke a key by id; False when no active key has that id."""
        return (
            self._run(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), key_id),
            )
            > 0
        )

    def project_for_key_hash(self, key_hash: str) -> str | None:
        """The project id an active key belongs to."""
        row = self._one(
            "SELECT project_id FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (key_hash,)
        )
        return None if row is None else str(row["project_id"])

    def has_active_keys(self) -> bool:
        """True when any key is stored and not revoked."""
        return self._one("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1") is not None

    # ---------------------------------------------------------------------------------------- indexes
    def insert_index(self, record: IndexRecord) -> None:
        """Store a new index (sqlite3.IntegrityError when the name is taken in the project)."""
        self._run(
            "INSERT INTO indexes (id, project_id, name, dimension, metric, vector_type, spec, tags, "
            "deletion_protection, port, created_at, embed, grpc_port) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.project_id,
                record.name,
                record.dimension,
                record.metric,
                record.vector_type,
                orjson.dumps(record.spec).decode(),
                orjson.dumps(record.tags).decode(),
                record.deletion_protection,
                record.port,
                record.created_at,
                None if record.embed is None else orjson.dumps(record.embed).decode(),
                record.grpc_port,
            ),
        )

    def index(self, project_id: str, name: str) -> IndexRecord | None:
        """The index called ``name`` in a project."""
        row = self._one("SELECT * FROM indexes WHERE project_id = ? AND name = ?", (project_id, name))
        return None if row is None else _index_from_row(row)

    def indexes(self, project_id: str | None = None) -> list[IndexRecord]:
        """The indexes of one project, or of all projects, by name."""
        if project_id is None:
            rows = self._all("SELECT * FROM indexes ORDER BY created_at")
        else:
            rows = self._all("SELECT * FROM indexes WHERE project_id = ? ORDER BY name", (project_id,))
        return [_index_from_row(row) for row in rows]

    def update_index(self, record: IndexRecord, **changes: Any) -> IndexRecord:
        """Persist changed fields (``spec``, ``tags``, ``deletion_protection``, ``port``, ``grpc_port``)."""
        updated = replace(record, **changes)
        self._run(
            "UPDATE indexes SET spec = ?, tags = ?, deletion_protection = ?, port = ?, grpc_port = ? "
            "WHERE id = ?",
            (
                orjson.dumps(updated.spec).decode(),
                orjson.dumps(updated.tags).decode(),
                updated.deletion_protection,
                updated.port,
                updated.grpc_port,
                updated.id,
            ),
        )
        return updated

    def delete_index(self, index_id: str) -> None:
        """Forget an index."""
        self._run("DELETE FROM indexes WHERE id = ?", (index_id,))

    def used_ports(self) -> set[int]:
        """Ports assigned to any index (data-plane and direct gRPC ports)."""
        rows = self._all("SELECT port, grpc_port FROM indexes")
        return {int(port) for row in rows for port in (row["port"], row["grpc_port"]) if port is not None}

"""Security properties of the local engine, each against a real server on loopback.

* Keys are stored as SHA-256 hashes: no file under the data directory holds a secret.
* Configured keys are compared in constant time (``hmac.compare_digest``).
* Keys never appear in logs, error bodies or response headers.
* Per-project isolation: a key of project B walks every route of the control plane, of the REST data
  plane and every gRPC method of project A's indexes, and learns nothing (404 exactly as for an index
  that does not exist), changes nothing.
* Path-like index names are refused with Pinecone's 400; path-like namespaces are stored under hashed
  directory names and never escape the data directory.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import grpc
import httpx
import pytest

from pinecone_rag.errors import ConfigurationError, UnauthenticatedError
from pinecone_rag.server import LocalServer, auth
from pinecone_rag.server.auth import KeyRing
from pinecone_rag.server.control_db import ControlDatabase
from pinecone_rag.server.launcher import CONTROL_DB
from pinecone_rag.server.settings import ENV_API_KEYS
from pinecone_rag.wire import messages as pb

if TYPE_CHECKING:
    from collections.abc import Iterator

SERVERLESS = {"serverless": {"cloud": "aws", "region": "us-east-1"}}
CONFIGURED = "configured-secret-0123456789abcdef"
SECRET_VALUE = "SECRET-METADATA-VALUE-7f3a"
SECRET_TEXT = "secret document text about zebras"
SECRET_NAMESPACE = "ns-secret-41b2"
INDEX_NOT_FOUND = {"code": 5, "message": "Index not found.", "details": []}


def http(base_url: str, key: str | None, version: str = "2025-10") -> httpx.Client:
    headers = {"X-Pinecone-Api-Version": version}
    if key is not None:
        headers["Api-Key"] = key
    return httpx.Client(base_url=base_url, headers=headers, timeout=30)


def url_of(host: str) -> str:
    return host if host.startswith("http") else f"http://{host}"


class Projects:
    """A server with two projects, A (owner of the data) and B (the intruder)."""

    def __init__(self, server: LocalServer, key_a: str, key_b: str) -> None:
        self.server = server
        self.key_a = key_a
        self.key_b = key_b
        self.indexes: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Projects]:
    data_dir = tmp_path_factory.mktemp("security")
    database = ControlDatabase(data_dir / CONTROL_DB)
    try:
        _, key_a = database.create_key("alpha-team", "owner")
        _, key_b = database.create_key("beta-team", "intruder")
    finally:
        database.close()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(ENV_API_KEYS, raising=False)
        server = LocalServer(data_dir, port=0, api_keys=(CONFIGURED,), log_level="debug")
    with server:
        state = Projects(server, key_a, key_b)
        with http(server.url, key_a) as control:
            created = control.post(
                "/indexes", json={"name": "alpha", "dimension": 4, "metric": "cosine", "spec": SERVERLESS}
            )
            assert created.status_code == 201, created.text
            state.indexes["alpha"] = created.json()
            state.indexes["alpha"]["grpc_port"] = int(created.headers["x-pinecone-rag-grpc-port"])
            created = control.post(
                "/indexes/create-for-model",
                json={
                    "name": "docs",
                    "cloud": "aws",
                    "region": "us-east-1",
                    "embed": {"model": "pinecone-rag-bm25", "field_map": {"text": "text"}},
                },
            )
            assert created.status_code == 201, created.text
            state.indexes["docs"] = created.json()
            state.indexes["docs"]["grpc_port"] = int(created.headers["x-pinecone-rag-grpc-port"])
        with http(url_of(state.indexes["alpha"]["host"]), key_a) as data:
            vectors = [
                {"id": "v1", "values": [1, 0, 0, 0], "metadata": {"secret": SECRET_VALUE}},
                {"id": "v2", "values": [0, 1, 0, 0], "metadata": {"secret": SECRET_VALUE}},
            ]
            upserted = data.post("/vectors/upsert", json={"vectors": vectors, "namespace": SECRET_NAMESPACE})
            assert upserted.status_code == 200, upserted.text
        with http(url_of(state.indexes["docs"]["host"]), key_a) as data:
            line = json.dumps({"_id": "d1", "text": SECRET_TEXT}).encode()
            upserted = data.post(
                f"/records/namespaces/{SECRET_NAMESPACE}/upsert",
                content=line,
                headers={"Content-Type": "application/x-ndjson"},
            )
            assert upserted.status_code == 201, upserted.text
        yield state


def leaks(text: str | bytes, projects: Projects) -> list[str]:
    """Which secrets of project A (data or keys) appear in ``text``."""
    raw = text.encode() if isinstance(text, str) else text
    secrets = [SECRET_VALUE, SECRET_TEXT, SECRET_NAMESPACE, projects.key_a, projects.key_b, CONFIGURED]
    found = [secret for secret in secrets if secret.encode() in raw]
    if b"alpha-team" in raw:
        found.append("project A's id")
    return found


def owner_view(projects: Projects) -> dict[str, Any]:
    """Everything project A can see of its data, to compare before and after an intrusion."""
    view: dict[str, Any] = {}
    with http(projects.server.url, projects.key_a) as control:
        listed = control.get("/indexes").json()["indexes"]
        view["indexes"] = sorted(
            (i["name"], i["host"], i["deletion_protection"], str(i.get("tags"))) for i in listed
        )
    for name in ("alpha", "docs"):
        with http(url_of(projects.indexes[name]["host"]), projects.key_a) as data:
            view[name, "stats"] = data.post("/describe_index_stats", json={}).json()
            view[name, "namespaces"] = data.get("/namespaces").json()
            view[name, "ids"] = data.get("/vectors/list", params={"namespace": SECRET_NAMESPACE}).json()
    with http(url_of(projects.indexes["alpha"]["host"]), projects.key_a) as data:
        view["fetch"] = data.get(
            "/vectors/fetch", params={"ids": ["v1", "v2"], "namespace": SECRET_NAMESPACE}
        ).json()
    return view


# --- keys at rest -------------------------------------------------------------------------------------------


def test_no_secret_is_stored_anywhere_in_the_data_dir(projects: Projects) -> None:
    data_dir = Path(projects.server.settings.data_dir)
    files = [path for path in data_dir.rglob("*") if path.is_file()]
    assert any(path.name == CONTROL_DB for path in files)
    for path in files:
        content = path.read_bytes()
        for secret in (projects.key_a, projects.key_b, CONFIGURED):
            assert secret.encode() not in content, f"a key is stored in plaintext in {path}"
    # What is stored: the SHA-256 hex digest and the last four characters (the hint `keys list` shows).
    with sqlite3.connect(f"file:{data_dir / CONTROL_DB}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT key_hash, hint FROM api_keys ORDER BY created_at").fetchall()
    assert rows == [
        (hashlib.sha256(projects.key_a.encode()).hexdigest(), projects.key_a[-4:]),
        (hashlib.sha256(projects.key_b.encode()).hexdigest(), projects.key_b[-4:]),
    ]


def test_configured_keys_are_compared_in_constant_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    database = ControlDatabase(tmp_path / CONTROL_DB)
    try:
        ring = KeyRing(database, ("right-key",))
        assert ring.project_for("right-key") == "default"
        with pytest.raises(UnauthenticatedError):
            ring.project_for("wrong-key")
    finally:
        database.close()
    # Every check went through compare_digest, on digests (never on the secrets themselves).
    assert len(calls) == 2
    digest = hashlib.sha256(b"right-key").hexdigest()
    assert all(known == digest for _, known in calls)
    assert all("key" not in str(given) for given, _ in calls)


# --- keys in logs and errors --------------------------------------------------------------------------------


def test_keys_never_appear_in_logs_or_error_bodies(
    projects: Projects, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "pcrag_" + "w" * 43
    alpha = projects.indexes["alpha"]
    seen: list[bytes] = []
    caplog.set_level(logging.DEBUG)
    with caplog.at_level(logging.DEBUG):
        for key in (wrong, projects.key_b, projects.key_a, CONFIGURED):
            with http(projects.server.url, key) as control:
                for response in (
                    control.get("/indexes/alpha"),
                    control.post("/indexes", content=b"{not json"),
                    control.post("/indexes", json={"name": "../bad", "dimension": 4, "spec": SERVERLESS}),
                    control.post("/embed", json={"model": "no-such-model", "inputs": [{"text": "x"}]}),
                    control.get("/no/such/route"),
                ):
                    seen.append(response.content + str(response.headers).encode())
            with http(url_of(alpha["host"]), key) as data:
                for response in (
                    data.post("/query", json={"vector": [1, 0], "topK": 1}),
                    data.post("/vectors/upsert", content=b"\x00\xff"),
                    data.post("/vectors/upsert", json={"vectors": [{"id": "", "values": [1, 0, 0, 0]}]}),
                    data.post("/query", json={"vector": [1, 0, 0, 0], "topK": 1, "filter": {"$bad": 1}}),
                    data.get("/vectors/fetch", params={"ids": ["x" * 600]}),
                ):
                    seen.append(response.content + str(response.headers).encode())
            for port in (int(alpha["host"].rsplit(":", 1)[1]), alpha["grpc_port"]):
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    for method in ("Query", "Upsert", "Fetch"):
                        call = channel.unary_unary(f"/VectorService/{method}")
                        try:
                            call(b"\xff\x01garbage", metadata=(("api-key", key),), timeout=10)
                        except grpc.RpcError as exc:
                            seen.append(f"{exc.code()} {exc.details()} {exc.trailing_metadata()}".encode())  # type: ignore[attr-defined]
    assert len(seen) == 4 * (5 + 5 + 6)
    for body in seen:
        for secret in (wrong, projects.key_a, projects.key_b, CONFIGURED):
            assert secret.encode() not in body, body[:300]
    assert caplog.records, "the server logged nothing at DEBUG; the check would be vacuous"
    for secret in (wrong, projects.key_a, projects.key_b, CONFIGURED):
        assert secret not in caplog.text
        assert secret[-12:] not in caplog.text


# --- per-project isolation ----------------------------------------------------------------------------------

DATA_ROUTES: list[tuple[str, str, Any]] = [
    (
        "POST",
        "/vectors/upsert",
        {"vectors": [{"id": "intruder", "values": [1, 0, 0, 0]}], "namespace": SECRET_NAMESPACE},
    ),
    (
        "POST",
        "/query",
        {"vector": [1, 0, 0, 0], "topK": 10, "namespace": SECRET_NAMESPACE, "includeMetadata": True},
    ),
    ("POST", "/query", {"id": "v1", "topK": 10, "namespace": SECRET_NAMESPACE, "includeValues": True}),
    ("GET", f"/vectors/fetch?ids=v1&ids=d1&namespace={SECRET_NAMESPACE}", None),
    (
        "POST",
        "/vectors/fetch_by_metadata",
        {"namespace": SECRET_NAMESPACE, "filter": {"secret": {"$exists": True}}},
    ),
    (
        "POST",
        "/vectors/update",
        {"id": "v1", "setMetadata": {"secret": "overwritten"}, "namespace": SECRET_NAMESPACE},
    ),
    (
        "POST",
        "/vectors/update",
        {"filter": {"secret": SECRET_VALUE}, "setMetadata": {"x": 1}, "namespace": SECRET_NAMESPACE},
    ),
    ("POST", "/vectors/delete", {"ids": ["v1"], "namespace": SECRET_NAMESPACE}),
    ("DELETE", "/vectors/delete", {"deleteAll": True, "namespace": SECRET_NAMESPACE}),
    ("GET", f"/vectors/list?namespace={SECRET_NAMESPACE}", None),
    ("GET", "/describe_index_stats", None),
    ("POST", "/describe_index_stats", {"filter": {"secret": SECRET_VALUE}}),
    ("GET", "/namespaces", None),
    ("POST", "/namespaces", {"name": "intruder-namespace"}),
    ("GET", f"/namespaces/{SECRET_NAMESPACE}", None),
    ("DELETE", f"/namespaces/{SECRET_NAMESPACE}", None),
    ("POST", f"/records/namespaces/{SECRET_NAMESPACE}/upsert", b'{"_id": "intruder", "text": "x"}\n'),
    (
        "POST",
        f"/records/namespaces/{SECRET_NAMESPACE}/search",
        {"query": {"inputs": {"text": "zebras"}, "top_k": 5}},
    ),
]


def _grpc_request(method: str) -> bytes:
    request_class, _ = pb.METHODS[method]
    request = request_class()
    fields = request.DESCRIPTOR.fields_by_name
    if "namespace" in fields:
        request.namespace = SECRET_NAMESPACE
    if method == "Upsert":
        request.vectors.add(id="intruder", values=[1.0, 0.0, 0.0, 0.0])
    elif method == "Query":
        request.top_k = 10
        request.vector[:] = [1.0, 0.0, 0.0, 0.0]
        request.include_metadata = True
    elif method == "Fetch":
        request.ids[:] = ["v1", "d1"]
    elif method == "Delete":
        request.delete_all = True
    elif method == "Update":
        request.id = "v1"
        request.set_metadata.update({"secret": "overwritten"})
    elif method == "CreateNamespace":
        request.name = "intruder-namespace"
    result: bytes = request.SerializeToString()
    return result


def test_every_data_plane_route_refuses_another_projects_key(projects: Projects) -> None:
    before = owner_view(projects)
    for name in ("alpha", "docs"):
        with http(url_of(projects.indexes[name]["host"]), projects.key_b) as data:
            for method, path, body in DATA_ROUTES:
                kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
                response = data.request(method, path, **kwargs)
                assert response.status_code == 404, (name, method, path, response.text)
                assert response.json() == INDEX_NOT_FOUND, (name, method, path)
                assert leaks(response.content + str(response.headers).encode(), projects) == []
    assert owner_view(projects) == before, "a refused request changed project A's data"


def test_every_grpc_method_refuses_another_projects_key(projects: Projects) -> None:
    before = owner_view(projects)
    methods = sorted(pb.METHODS)
    assert len(methods) == 12
    for name in ("alpha", "docs"):
        index = projects.indexes[name]
        for port in (int(index["host"].rsplit(":", 1)[1]), index["grpc_port"]):
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                for method in methods:
                    call = channel.unary_unary(f"/VectorService/{method}")
                    with pytest.raises(grpc.RpcError) as caught:
                        call(_grpc_request(method), metadata=(("api-key", projects.key_b),), timeout=10)
                    error: Any = caught.value
                    assert error.code() == grpc.StatusCode.NOT_FOUND, (name, port, method)
                    assert error.details() == "Index not found."
                    assert leaks(f"{error.details()} {error.trailing_metadata()}", projects) == []
    assert owner_view(projects) == before


def _normalised(response: httpx.Response) -> tuple[int, str]:
    text = response.text.replace("alpha", "NAME").replace("docs", "NAME").replace("missing-index", "NAME")
    return response.status_code, text


def test_control_plane_gives_no_existence_oracle(projects: Projects) -> None:
    """Project A's index names answer project B exactly as names that exist nowhere."""
    before = owner_view(projects)
    with http(projects.server.url, projects.key_b) as control:
        listed = control.get("/indexes")
        assert listed.status_code == 200
        assert listed.json() == {"indexes": []}
        for name in ("alpha", "docs"):
            for method, path, body in (
                ("GET", f"/indexes/{name}", None),
                ("PATCH", f"/indexes/{name}", {"deletion_protection": "enabled", "tags": {"owner": "b"}}),
                ("DELETE", f"/indexes/{name}", None),
                ("GET", f"/indexes/{name}/backups", None),
                ("POST", f"/indexes/{name}/backups", {"name": "steal"}),
            ):
                theirs = control.request(method, path, json=body)
                nowhere = control.request(method, path.replace(name, "missing-index"), json=body)
                assert theirs.status_code in (401, 403, 404, 501), (method, path, theirs.text)
                assert _normalised(theirs) == _normalised(nowhere), (method, path)
                assert "x-pinecone-rag-grpc-port" not in theirs.headers
                assert leaks(theirs.content, projects) == []
        whoami = control.get("/actions/whoami").json()
        assert whoami["project_name"] != "alpha-team"
        assert leaks(json.dumps(whoami), projects) == []
    assert owner_view(projects) == before


def test_same_names_in_another_project_are_separate_indexes(projects: Projects) -> None:
    before = owner_view(projects)
    with http(projects.server.url, projects.key_b) as control:
        own = control.post("/indexes", json={"name": "alpha", "dimension": 4, "spec": SERVERLESS})
        assert own.status_code == 201, own.text
        model = control.post(
            "/indexes/create-for-model",
            json={
                "name": "docs",
                "cloud": "aws",
                "region": "us-east-1",
                "embed": {"model": "pinecone-rag-bm25", "field_map": {"text": "text"}},
            },
        )
        assert model.status_code == 201, model.text
        try:
            for created in (own.json(), model.json()):
                assert created["host"] not in (
                    projects.indexes["alpha"]["host"],
                    projects.indexes["docs"]["host"],
                )
                with http(url_of(created["host"]), projects.key_b) as data:
                    stats = data.post("/describe_index_stats", json={}).json()
                    assert stats["totalVectorCount"] == 0
                    assert data.get("/namespaces").json()["namespaces"] == []
        finally:
            assert control.delete("/indexes/alpha").status_code == 202
            assert control.delete("/indexes/docs").status_code == 202
    assert owner_view(projects) == before


def test_inference_routes_need_a_valid_key_and_hold_no_project_data(projects: Projects) -> None:
    # The Inference API is stateless: any valid key may use it (as on Pinecone); an invalid one may not.
    routes: list[tuple[str, str, Any]] = [
        ("GET", "/models", None),
        ("GET", "/models/pinecone-rag-bm25", None),
        (
            "POST",
            "/embed",
            {
                "model": "pinecone-rag-bm25",
                "inputs": [{"text": "zebras"}],
                "parameters": {"input_type": "query"},
            },
        ),
        (
            "POST",
            "/rerank",
            {"model": "pinecone-rag-bm25-rerank", "query": "zebras", "documents": [{"text": "zebras"}]},
        ),
    ]
    for method, path, body in routes:
        with http(projects.server.url, projects.key_b) as control:
            response = control.request(method, path, json=body)
            assert response.status_code == 200, (path, response.text)
            assert leaks(response.content, projects) == []
        for bad in ("pcrag_" + "x" * 43, None):
            with http(projects.server.url, bad) as control:
                assert control.request(method, path, json=body).status_code == 401, path


def test_non_loopback_bind_without_keys_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_API_KEYS, raising=False)
    for host in ("0.0.0.0", "::", "192.0.2.1"):
        server = LocalServer(tmp_path, host=host, port=0)
        with pytest.raises(ConfigurationError, match="without API keys"):
            server.start()
    # A revoked key does not count as a key.
    database = ControlDatabase(tmp_path / CONTROL_DB)
    try:
        key, _ = database.create_key("default", "gone")
        assert database.revoke_key(key.id)
    finally:
        database.close()
    with pytest.raises(ConfigurationError, match="without API keys"):
        LocalServer(tmp_path, host="0.0.0.0", port=0).start()


# --- path confinement ---------------------------------------------------------------------------------------

BAD_INDEX_NAMES = [
    "../x",
    "..",
    ".",
    "a/b",
    "/etc",
    "x\x00y",
    "\x00",
    "a\\b",
    "A",
    "é",
    "ü-index",
    "日本",
    "-a",
    "a-",
    "a_b",
    "a.b",
    "a b",
    "",
    "a" * 46,
    "a" * 10_000,
    "%2e%2e",
    "a\n",
]


@pytest.mark.parametrize("name", BAD_INDEX_NAMES, ids=lambda n: repr(n[:20]))
def test_path_like_index_names_get_pinecones_400(projects: Projects, name: str) -> None:
    with http(projects.server.url, projects.key_a) as control:
        response = control.post("/indexes", json={"name": name, "dimension": 4, "spec": SERVERLESS})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "INVALID_ARGUMENT"
        assert response.json()["error"]["message"].startswith("Name must be 1-45 characters long")
        # As a path segment it finds nothing (and never a file); "." and ".." the client resolves itself.
        if name not in ("", ".", "..") and "\x00" not in name:
            lookup = control.get(f"/indexes/{quote(name, safe='')}")
            assert lookup.status_code == 404, lookup.text


def test_trailing_newlines_are_not_valid_names_or_tag_keys(projects: Projects) -> None:
    # Regression: `^...$` matched "a\n" (``$`` matches before a final newline).
    with http(projects.server.url, projects.key_a) as control:
        response = control.post("/indexes", json={"name": "nl\n", "dimension": 4, "spec": SERVERLESS})
        assert response.status_code == 400, response.text
        response = control.patch("/indexes/alpha", json={"tags": {"key\n": "v"}})
        assert response.status_code == 400, response.text
        assert "tags" not in control.get("/indexes/alpha").json()


def test_the_longest_valid_index_name_works(projects: Projects) -> None:
    name = "a" + "0" * 43 + "z"
    assert len(name) == 45
    with http(projects.server.url, projects.key_a) as control:
        created = control.post("/indexes", json={"name": name, "dimension": 4, "spec": SERVERLESS})
        assert created.status_code == 201, created.text
        assert control.delete(f"/indexes/{name}").status_code == 202


PATH_LIKE_NAMESPACES = [
    "../x",
    "../../../../../../tmp/escape",
    "/etc/passwd",
    "a/../../b",
    "..",
    ".",
    "./",
    "\\..\\x",
    "ns/with/slashes",
    "%2e%2e%2fx",
    "~",
    "$HOME",
    "x" * 512,
    "con",
    "nul",
    ".hidden",
    " ",
    "\t",
]
REFUSED_NAMESPACES = ["a\x00b", "\x00", "é", "名前", "🙂", "x" * 513]


def _tree(root: Path) -> set[str]:
    return {str(path) for path in root.rglob("*")}


def test_path_like_namespaces_stay_inside_the_data_dir(projects: Projects) -> None:
    data_dir = Path(projects.server.settings.data_dir).resolve()
    outside = data_dir.parent
    siblings_before = set(outside.iterdir())
    alpha = projects.indexes["alpha"]
    with http(url_of(alpha["host"]), projects.key_a) as data:
        for i, namespace in enumerate(PATH_LIKE_NAMESPACES):
            body = {"vectors": [{"id": f"p{i}", "values": [1, 0, 0, 1]}], "namespace": namespace}
            response = data.post("/vectors/upsert", json=body)
            assert response.status_code == 200, (namespace, response.text)
        for namespace in REFUSED_NAMESPACES:
            body = {"vectors": [{"id": "r", "values": [1, 0, 0, 1]}], "namespace": namespace}
            response = data.post("/vectors/upsert", json=body)
            assert response.status_code == 400, (namespace, response.text)
            assert response.json()["code"] == 3
        # Each namespace holds its own record, found by its exact name and no other.
        for i, namespace in enumerate(PATH_LIKE_NAMESPACES):
            fetched = data.get("/vectors/fetch", params={"ids": [f"p{i}"], "namespace": namespace})
            assert fetched.status_code == 200, fetched.text
            assert list(fetched.json()["vectors"]) == [f"p{i}"], namespace
        listed = {n["name"] for n in data.get("/namespaces", params={"limit": 1000}).json()["namespaces"]}
        assert set(PATH_LIKE_NAMESPACES) <= listed
        # Namespaces with path syntax in the URL reach the namespace of that exact name.
        described = data.get("/namespaces/" + quote("ns/with/slashes", safe="/"))
        assert described.status_code == 200, described.text
        assert described.json()["record_count"] == 1
    # Nothing appeared next to the data directory, nothing inside it is a link or named after a namespace.
    assert set(outside.iterdir()) == siblings_before
    for path in data_dir.rglob("*"):
        assert not path.is_symlink(), path
        assert path.resolve().is_relative_to(data_dir), path
        for namespace in PATH_LIKE_NAMESPACES:
            if len(namespace) > 3 and namespace.strip("./\\") and namespace not in ("con", "nul"):
                assert namespace not in path.name, (namespace, path)
    assert not Path("/tmp/escape").exists()
    assert not any(p.name == "x" for p in data_dir.parent.iterdir())

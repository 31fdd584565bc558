"""API keys, projects and exposure rules of the local engine, one test per rule (real servers on loopback)."""

from __future__ import annotations

import re
import socket
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest

from pinecone_rag import cli
from pinecone_rag.errors import ConfigurationError
from pinecone_rag.server import LocalServer, ServerSettings
from pinecone_rag.server.launcher import CONTROL_DB
from pinecone_rag.server.settings import ENV_API_KEYS, is_loopback
from pinecone_rag.wire import messages as pb

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

KEY = "k1"
SERVERLESS = {"serverless": {"cloud": "aws", "region": "us-east-1"}}
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
CONTROL_401 = b'{"error":{"code":"UNAUTHENTICATED","message":"Invalid API key."},"status":401}'
DATA_401 = {"code": 16, "message": "Invalid API key.", "details": []}
REVOCATION_DEADLINE = 1.5 + 1.5  # the key cache holds for up to ~1 s; allow generous slack


def client(base_url: str, key: str | None, version: str = "2025-10") -> httpx.Client:
    headers = {"X-Pinecone-Api-Version": version}
    if key is not None:
        headers["Api-Key"] = key
    transport = httpx.HTTPTransport(socket_options=NODELAY)
    return httpx.Client(base_url=base_url, headers=headers, transport=transport, timeout=30)


def grpc_code(port: int, key: str | None, method: str = "DescribeIndexStats") -> grpc.StatusCode:
    """The status of one raw gRPC call to ``/VectorService/<method>`` with ``api-key`` metadata ``key``."""
    request_class, response_class = pb.METHODS[method]
    request = request_class()
    if method == "Upsert":
        request.vectors.add(id="intruder", values=[1.0] * 4)
    metadata = () if key is None else (("api-key", key),)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(
            f"/VectorService/{method}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        try:
            call(request, metadata=metadata, timeout=10)
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()  # type: ignore[attr-defined]
            details: str = exc.details()  # type: ignore[attr-defined]
        else:
            return grpc.StatusCode.OK
    if code == grpc.StatusCode.UNAUTHENTICATED:
        assert details == "Invalid API key."
    return code


def port_of(host: str) -> int:
    return int(host.rsplit(":", 1)[1])


def url_of(host: str) -> str:
    return host if host.startswith("http") else f"http://{host}"


def create_key(
    data_dir: Path, capsys: pytest.CaptureFixture[str], project: str = "default"
) -> tuple[str, str]:
    """``pinecone-rag keys create``, in-process; returns (key id, secret)."""
    capsys.readouterr()
    name = f"test-{uuid.uuid4().hex[:6]}"
    assert (
        cli.main(["keys", "--data-dir", str(data_dir), "create", "--project", project, "--name", name]) == 0
    )
    out = capsys.readouterr().out
    match = re.search(r"created key (\S+) in project '([^']+)'", out)
    assert match, out
    assert match.group(2) == project
    secret = out.strip().splitlines()[-1].strip()
    assert secret.startswith("pcrag_")
    return match.group(1), secret


def poll(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "condition not reached before the deadline"
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture(autouse=True)
def _no_environment_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_API_KEYS, raising=False)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A server whose default project has the configured key ``k1``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(ENV_API_KEYS, raising=False)
        server = LocalServer(tmp_path_factory.mktemp("auth"), port=0, api_keys=(KEY,))
    with server:
        yield server


@pytest.fixture(scope="module")
def alpha(keyed: LocalServer) -> dict[str, Any]:
    """Index ``alpha`` of the default project (created with ``k1``)."""
    with client(keyed.url, KEY) as control:
        response = control.post(
            "/indexes", json={"name": "alpha", "dimension": 4, "metric": "cosine", "spec": SERVERLESS}
        )
        assert response.status_code == 201, response.text
        model: dict[str, Any] = response.json()
        model["grpc_port"] = int(response.headers["x-pinecone-rag-grpc-port"])
        return model


# --- the control plane --------------------------------------------------------------------------------------


def test_control_plane_missing_key_is_401_with_exact_body(keyed: LocalServer) -> None:
    with client(keyed.url, None) as control:
        response = control.get("/indexes")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert response.content == CONTROL_401


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/indexes", None),
        ("GET", "/indexes/alpha", None),
        ("POST", "/indexes", {"name": "intruder", "dimension": 4, "spec": SERVERLESS}),
        ("PATCH", "/indexes/alpha", {"deletion_protection": "enabled"}),
        ("DELETE", "/indexes/alpha", None),
        ("GET", "/actions/whoami", None),
    ],
)
def test_control_plane_wrong_key_is_401(
    keyed: LocalServer, alpha: dict[str, Any], method: str, path: str, body: Any
) -> None:
    with client(keyed.url, "wrong-key") as control:
        response = control.request(method, path, json=body)
    assert response.status_code == 401
    assert response.content == CONTROL_401
    # Nothing happened: alpha is still there, unchanged, and no index was created.
    with client(keyed.url, KEY) as control:
        listed = control.get("/indexes").json()["indexes"]
    assert [index["name"] for index in listed if index["name"] in ("alpha", "intruder")] == ["alpha"]
    assert next(i for i in listed if i["name"] == "alpha")["deletion_protection"] == "disabled"


def test_control_plane_empty_key_is_401(keyed: LocalServer) -> None:
    with client(keyed.url, "") as control:
        response = control.get("/indexes")
    assert response.status_code == 401
    assert response.content == CONTROL_401


def test_control_plane_configured_key_works(keyed: LocalServer, alpha: dict[str, Any]) -> None:
    with client(keyed.url, KEY) as control:
        response = control.get("/indexes/alpha")
    assert response.status_code == 200
    assert response.json()["name"] == "alpha"


def test_health_needs_no_key(keyed: LocalServer) -> None:
    with client(keyed.url, None) as control:
        assert control.get("/health").status_code == 200


# --- the data plane -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "", "wrong-key"], ids=["missing", "empty", "wrong"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/describe_index_stats", {}),
        ("POST", "/vectors/upsert", {"vectors": [{"id": "intruder", "values": [1, 0, 0, 0]}]}),
        ("POST", "/query", {"vector": [1, 0, 0, 0], "topK": 1}),
        ("GET", "/vectors/list", None),
        ("GET", "/namespaces", None),
    ],
)
def test_data_plane_rest_bad_key_is_401(
    alpha: dict[str, Any], key: str | None, method: str, path: str, body: Any
) -> None:
    with client(url_of(alpha["host"]), key) as data:
        response = data.request(method, path, json=body)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == DATA_401
    with client(url_of(alpha["host"]), KEY) as data:
        stats = data.post("/describe_index_stats", json={})
        assert stats.status_code == 200
        assert stats.json()["totalVectorCount"] == 0, "a rejected upsert was written"


@pytest.mark.parametrize("key", [None, "", "wrong-key"], ids=["missing", "empty", "wrong"])
@pytest.mark.parametrize("method", ["DescribeIndexStats", "Upsert", "Query", "ListNamespaces"])
def test_data_plane_grpc_bad_key_is_unauthenticated(
    alpha: dict[str, Any], key: str | None, method: str
) -> None:
    # Through the shared REST+gRPC port, and on the direct gRPC port the engine advertises.
    assert grpc_code(port_of(alpha["host"]), key, method) == grpc.StatusCode.UNAUTHENTICATED
    assert grpc_code(alpha["grpc_port"], key, method) == grpc.StatusCode.UNAUTHENTICATED


def test_data_plane_configured_key_works(alpha: dict[str, Any]) -> None:
    assert grpc_code(port_of(alpha["host"]), KEY) == grpc.StatusCode.OK
    assert grpc_code(alpha["grpc_port"], KEY) == grpc.StatusCode.OK
    with client(url_of(alpha["host"]), KEY) as data:
        assert data.get("/vectors/list").status_code == 200


# --- projects -----------------------------------------------------------------------------------------------


def test_project_keys_see_only_their_own_indexes(
    keyed: LocalServer, alpha: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    _, other = create_key(keyed.settings.data_dir, capsys, project="other")
    with client(keyed.url, other) as control:
        # The new key works at once, but its project has no indexes yet.
        listed = control.get("/indexes")
        assert listed.status_code == 200
        assert listed.json() == {"indexes": []}
        # Another project's index is invisible, not forbidden.
        for method in ("GET", "DELETE"):
            response = control.request(method, "/indexes/alpha")
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "NOT_FOUND"
        response = control.patch("/indexes/alpha", json={"tags": {"owner": "other"}})
        assert response.status_code == 404
        # Index names are per project: "other" can have its own alpha.
        created = control.post(
            "/indexes", json={"name": "alpha", "dimension": 4, "metric": "euclidean", "spec": SERVERLESS}
        )
        assert created.status_code == 201, created.text
        other_alpha = created.json()
        assert port_of(other_alpha["host"]) != port_of(alpha["host"])
        assert [i["metric"] for i in control.get("/indexes").json()["indexes"]] == ["euclidean"]
    try:
        with client(keyed.url, KEY) as control:
            own = control.get("/indexes").json()["indexes"]
            assert [(i["name"], i["metric"]) for i in own if i["name"] == "alpha"] == [("alpha", "cosine")]
            assert all(i["host"] != other_alpha["host"] for i in own)

        # The data plane of another project's index answers 404 / NOT_FOUND.
        with client(url_of(alpha["host"]), other) as data:
            response = data.post("/describe_index_stats", json={})
            assert response.status_code == 404
            assert response.json()["code"] == 5
            upsert = data.post("/vectors/upsert", json={"vectors": [{"id": "x", "values": [1, 0, 0, 0]}]})
            assert upsert.status_code == 404
        assert grpc_code(port_of(alpha["host"]), other) == grpc.StatusCode.NOT_FOUND
        assert grpc_code(alpha["grpc_port"], other, "Upsert") == grpc.StatusCode.NOT_FOUND
        with client(url_of(other_alpha["host"]), KEY) as data:
            assert data.post("/describe_index_stats", json={}).status_code == 404
        assert grpc_code(port_of(other_alpha["host"]), KEY) == grpc.StatusCode.NOT_FOUND
        # Each key reaches its own index.
        assert grpc_code(port_of(other_alpha["host"]), other) == grpc.StatusCode.OK
        with client(url_of(alpha["host"]), KEY) as data:
            assert data.post("/describe_index_stats", json={}).json()["totalVectorCount"] == 0
    finally:
        with client(keyed.url, other) as control:
            assert control.delete("/indexes/alpha").status_code == 202
    with client(keyed.url, KEY) as control:
        assert control.get("/indexes/alpha").status_code == 200, "deleting other's alpha touched ours"


def test_revoked_key_stops_working(
    keyed: LocalServer, alpha: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = keyed.settings.data_dir
    key_id, secret = create_key(data_dir, capsys)
    with client(keyed.url, secret) as control, client(url_of(alpha["host"]), secret) as data:
        assert control.get("/indexes").status_code == 200
        assert data.post("/describe_index_stats", json={}).status_code == 200
        assert grpc_code(port_of(alpha["host"]), secret) == grpc.StatusCode.OK

        capsys.readouterr()
        assert cli.main(["keys", "--data-dir", str(data_dir), "list"]) == 0
        listing = capsys.readouterr().out
        assert re.search(rf"^{key_id}\s.*active$", listing, re.MULTILINE), listing
        assert secret not in listing

        assert cli.main(["keys", "--data-dir", str(data_dir), "revoke", key_id]) == 0
        assert f"revoked {key_id}" in capsys.readouterr().out

        poll(lambda: control.get("/indexes").status_code == 401, REVOCATION_DEADLINE)
        assert control.get("/indexes").content == CONTROL_401
        poll(lambda: data.post("/describe_index_stats", json={}).status_code == 401, REVOCATION_DEADLINE)
        assert data.post("/describe_index_stats", json={}).json() == DATA_401
        poll(
            lambda: grpc_code(port_of(alpha["host"]), secret) == grpc.StatusCode.UNAUTHENTICATED,
            REVOCATION_DEADLINE,
        )
    # Revoking twice fails; the listing shows the key revoked; the configured key is unaffected.
    assert cli.main(["keys", "--data-dir", str(data_dir), "revoke", key_id]) == 1
    capsys.readouterr()
    assert cli.main(["keys", "--data-dir", str(data_dir), "list"]) == 0
    assert re.search(rf"^{key_id}\s.*revoked$", capsys.readouterr().out, re.MULTILINE)
    with client(keyed.url, KEY) as control:
        assert control.get("/indexes").status_code == 200


def test_key_secrets_are_not_stored(keyed: LocalServer, capsys: pytest.CaptureFixture[str]) -> None:
    _, secret = create_key(keyed.settings.data_dir, capsys)
    for path in Path(keyed.settings.data_dir).glob(CONTROL_DB + "*"):
        assert secret.encode() not in path.read_bytes(), f"the secret is stored in {path.name}"


# --- open mode ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(ENV_API_KEYS, raising=False)
        server = LocalServer(tmp_path_factory.mktemp("open"), port=0)
    with server:
        yield server


def test_open_mode_accepts_any_non_empty_key(open_server: LocalServer) -> None:
    name = f"open-{uuid.uuid4().hex[:8]}"
    with client(open_server.url, "anything") as control:
        created = control.post("/indexes", json={"name": name, "dimension": 4, "spec": SERVERLESS})
        assert created.status_code == 201, created.text
    host = created.json()["host"]
    for key in ("anything", "something-else", "x"):
        with client(open_server.url, key) as control:
            assert control.get(f"/indexes/{name}").status_code == 200
        with client(url_of(host), key) as data:
            assert data.post("/describe_index_stats", json={}).status_code == 200
        assert grpc_code(port_of(host), key) == grpc.StatusCode.OK


@pytest.mark.parametrize("key", [None, ""], ids=["missing", "empty"])
def test_open_mode_rejects_an_empty_key(open_server: LocalServer, key: str | None) -> None:
    with client(open_server.url, key) as control:
        response = control.get("/indexes")
        assert response.status_code == 401
        assert response.content == CONTROL_401
    with client(open_server.url, "fine") as control:
        host = control.post(
            "/indexes", json={"name": f"open-{uuid.uuid4().hex[:8]}", "dimension": 4, "spec": SERVERLESS}
        ).json()["host"]
    with client(url_of(host), key) as data:
        response = data.post("/describe_index_stats", json={})
        assert response.status_code == 401
        assert response.json() == DATA_401
    assert grpc_code(port_of(host), key) == grpc.StatusCode.UNAUTHENTICATED


# --- exposure -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_non_loopback_without_keys_is_refused(tmp_path: Path, host: str) -> None:
    server = LocalServer(tmp_path, host=host, port=0)
    with pytest.raises(ConfigurationError, match="without API keys"):
        server.start()
    with pytest.raises(RuntimeError):
        _ = server.port


@pytest.mark.parametrize("source", ["argument", "environment", "database"])
def test_non_loopback_with_keys_starts(
    tmp_path: Path, source: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "exposed-key"
    keys: tuple[str, ...] = ()
    if source == "argument":
        keys = (key,)
    elif source == "environment":
        monkeypatch.setenv(ENV_API_KEYS, key)
    else:
        _, key = create_key(tmp_path, capsys)
    server = LocalServer(tmp_path, host="0.0.0.0", port=0, api_keys=keys)
    server.start()
    try:
        with client(f"http://127.0.0.1:{server.port}", key) as control:
            assert control.get("/indexes").status_code == 200
        with client(f"http://127.0.0.1:{server.port}", "wrong") as control:
            assert control.get("/indexes").status_code == 401
    finally:
        server.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.1", "192.168.1.20", "example.com", ""])
def test_non_loopback_addresses(host: str) -> None:
    assert not is_loopback(host)


# --- API version 2026-07 ------------------------------------------------------------------------------------


def test_2026_07_answers_401_as_plain_text(keyed: LocalServer, alpha: dict[str, Any]) -> None:
    for key in (None, "wrong-key"):
        with client(keyed.url, key, version="2026-07") as control:
            response = control.get("/indexes")
            assert response.status_code == 401
            assert response.headers["content-type"].startswith("text/plain")
            assert response.text == "Invalid API key."
        with client(url_of(alpha["host"]), key, version="2026-07") as data:
            response = data.post("/describe_index_stats", json={})
            assert response.status_code == 401
            assert response.headers["content-type"].startswith("text/plain")
            assert response.text == "Invalid API key."
    # Older versions keep the JSON shape.
    with client(keyed.url, "wrong-key", version="2025-04") as control:
        assert control.get("/indexes").content == CONTROL_401


# --- secrets in representations -----------------------------------------------------------------------------


def test_key_never_appears_in_settings_repr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "super-secret-key-value-12345"
    settings = ServerSettings(data_dir=tmp_path, api_keys=(secret, "another-secret"))
    for text in (repr(settings), str(settings), f"{settings}", f"{settings!r}"):
        assert secret not in text
        assert "another-secret" not in text
    assert "<2 keys>" in repr(settings)
    monkeypatch.setenv(ENV_API_KEYS, "env-secret-value")
    from_env = ServerSettings.from_env(tmp_path, api_keys=(secret,))
    assert from_env.api_keys == (secret, "env-secret-value")
    assert secret not in repr(from_env)
    assert "env-secret-value" not in repr(from_env)
    server = LocalServer(tmp_path, port=0, api_keys=(secret,))
    assert secret not in repr(server)
    assert secret not in repr(server.settings)

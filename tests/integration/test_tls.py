"""Optional TLS: every port of the engine speaks TLS with ``tls_cert``/``tls_key``, tested end to end.

The test makes its own certificate authority and a server certificate for ``localhost``/``127.0.0.1``
with the ``openssl`` command, then drives the control plane, the data plane's REST and gRPC (through the
shared port and on the direct gRPC port), the official SDK (REST with ``ssl_ca_certs`` and
``PineconeGRPC``), our own client, and ``pinecone-rag serve --tls-cert --tls-key``.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest

from pinecone_rag.errors import ConfigurationError
from pinecone_rag.server import LocalServer
from pinecone_rag.server.settings import ENV_API_KEYS
from pinecone_rag.wire import messages as pb

if TYPE_CHECKING:
    from collections.abc import Iterator

KEY = "tls-key"
SERVERLESS = {"serverless": {"cloud": "aws", "region": "us-east-1"}}
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path) -> dict[str, Path]:
    """A throw-away CA and a server certificate it signed, valid for localhost and 127.0.0.1."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=pinecone-rag test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )
    _openssl(
        "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=directory
    )
    (directory / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        cwd=directory,
    )
    return {"ca": directory / "ca.pem", "cert": directory / "server.pem", "key": directory / "server.key"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, certs: dict[str, Path]) -> Iterator[LocalServer]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(ENV_API_KEYS, raising=False)
        server = LocalServer(
            tmp_path_factory.mktemp("tls"),
            port=0,
            api_keys=(KEY,),
            tls_cert=certs["cert"],
            tls_key=certs["key"],
        )
    with server:
        yield server


def trusted(certs: dict[str, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs["ca"]))


def client(base_url: str, certs: dict[str, Path], version: str = "2025-10") -> httpx.Client:
    headers = {"Api-Key": KEY, "X-Pinecone-Api-Version": version}
    return httpx.Client(base_url=base_url, headers=headers, verify=trusted(certs), timeout=30)


@pytest.fixture(scope="module")
def index(tls_server: LocalServer, certs: dict[str, Path]) -> dict[str, Any]:
    with client(tls_server.url, certs) as control:
        response = control.post(
            "/indexes", json={"name": "secure", "dimension": 4, "metric": "cosine", "spec": SERVERLESS}
        )
    assert response.status_code == 201, response.text
    model: dict[str, Any] = response.json()
    model["grpc_port"] = int(response.headers["x-pinecone-rag-grpc-port"])
    return model


def grpc_stats(target: str, certs: dict[str, Path]) -> Any:
    credentials = grpc.ssl_channel_credentials(root_certificates=certs["ca"].read_bytes())
    request_class, response_class = pb.METHODS["DescribeIndexStats"]
    with grpc.secure_channel(target, credentials) as channel:
        call = channel.unary_unary(
            "/VectorService/DescribeIndexStats",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        return call(request_class(), metadata=(("api-key", KEY),), timeout=20)


# --- the engine's own endpoints -----------------------------------------------------------------------------


def test_control_plane_speaks_https(tls_server: LocalServer, certs: dict[str, Path]) -> None:
    assert tls_server.url.startswith("https://")
    assert not tls_server.host.startswith("http")
    with client(tls_server.url, certs) as control:
        assert control.get("/indexes").status_code == 200
    # Without the CA the certificate is refused; plaintext HTTP gets no HTTP answer.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_server.url}/health", timeout=10)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{tls_server.host}/health", timeout=10)


def test_index_hosts_are_advertised_as_https(
    tls_server: LocalServer, certs: dict[str, Path], index: dict[str, Any]
) -> None:
    assert index["host"].startswith("https://127.0.0.1:")
    for version, prefix in (("2025-10", "https://"), ("2026-07", "https://"), ("2025-04", "127.0.0.1")):
        with client(tls_server.url, certs, version) as control:
            assert control.get("/indexes/secure").json()["host"].startswith(prefix), version


def test_data_plane_rest_over_tls(index: dict[str, Any], certs: dict[str, Path]) -> None:
    with client(index["host"], certs) as data:
        upserted = data.post("/vectors/upsert", json={"vectors": [{"id": "a", "values": [1, 0, 0, 0]}]})
        assert upserted.status_code == 200, upserted.text
        fetched = data.get("/vectors/fetch", params={"ids": "a"})
        assert fetched.status_code == 200
        assert list(fetched.json()["vectors"]) == ["a"]
    with pytest.raises(httpx.HTTPError):
        httpx.post(index["host"].replace("https://", "http://") + "/describe_index_stats", timeout=10)


def test_data_plane_grpc_over_tls_on_the_shared_and_direct_ports(
    index: dict[str, Any], certs: dict[str, Path]
) -> None:
    shared = index["host"].removeprefix("https://")
    assert grpc_stats(shared, certs).dimension == 4
    assert grpc_stats(f"127.0.0.1:{index['grpc_port']}", certs).dimension == 4
    # A plaintext gRPC client cannot talk to the TLS port.
    with grpc.insecure_channel(shared) as channel:
        call = channel.unary_unary("/VectorService/DescribeIndexStats")
        with pytest.raises(grpc.RpcError) as caught:
            call(b"", metadata=(("api-key", KEY),), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    # The server still serves TLS clients after that.
    assert grpc_stats(shared, certs).dimension == 4


# --- clients ------------------------------------------------------------------------------------------------


def test_official_sdk_rest_with_ssl_ca_certs(tls_server: LocalServer, certs: dict[str, Path]) -> None:
    from pinecone import Pinecone, ServerlessSpec

    pc = Pinecone(api_key=KEY, host=tls_server.url, ssl_ca_certs=str(certs["ca"]))
    name = f"sdk-rest-{uuid.uuid4().hex[:6]}"
    pc.create_index(name, dimension=4, metric="cosine", spec=ServerlessSpec(cloud="aws", region="us-east-1"))
    try:
        assert pc.describe_index(name).host.startswith("https://")
        idx = pc.Index(name)
        assert (
            idx.upsert(vectors=[("a", [1.0, 0.0, 0.0, 0.0]), ("b", [0.0, 1.0, 0.0, 0.0])]).upserted_count == 2
        )
        matches = idx.query(vector=[1.0, 0.0, 0.0, 0.0], top_k=1).matches
        assert [m.id for m in matches] == ["a"]
        assert idx.describe_index_stats().total_vector_count == 2
    finally:
        pc.delete_index(name)


# pinecone 8.1.2 reads ssl_ca_certs with open(...).read() and never closes the file (ResourceWarning).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_official_sdk_grpc_with_ssl_ca_certs(tls_server: LocalServer, certs: dict[str, Path]) -> None:
    from pinecone import ServerlessSpec
    from pinecone.grpc import PineconeGRPC

    pc = PineconeGRPC(api_key=KEY, host=tls_server.url, ssl_ca_certs=str(certs["ca"]))
    name = f"sdk-grpc-{uuid.uuid4().hex[:6]}"
    pc.create_index(name, dimension=4, metric="cosine", spec=ServerlessSpec(cloud="aws", region="us-east-1"))
    try:
        idx = pc.Index(name)
        try:
            assert (
                idx.upsert(vectors=[("a", [1.0, 0.0, 0.0, 0.0]), ("b", [0.0, 1.0, 0.0, 0.0])]).upserted_count
                == 2
            )
            matches = idx.query(vector=[0.0, 1.0, 0.0, 0.0], top_k=1).matches
            assert [m.id for m in matches] == ["b"]
            assert idx.fetch(ids=["a"]).vectors["a"].values == [1.0, 0, 0, 0]
        finally:
            idx.close()
    finally:
        pc.delete_index(name)
        gc.collect()  # collect the SDK's unclosed file while this test's filter still applies


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_own_client_trusts_the_ca_it_is_given(
    tls_server: LocalServer, certs: dict[str, Path], index: dict[str, Any], transport: str
) -> None:
    from pinecone_rag import PineconeClient

    vector = [0.0, 0.0, 1.0, 0.0] if transport == "grpc" else [0.0, 0.0, 0.0, 1.0]
    with PineconeClient(api_key=KEY, host=tls_server.url, ssl_ca_certs=certs["ca"]) as pc:
        idx = pc.index("secure", transport=transport)
        idx.upsert([(f"{transport}-own", vector)], show_progress=False)
        assert [m.id for m in idx.query(vector=vector, top_k=1).matches] == [f"{transport}-own"]


def test_own_client_without_the_ca_refuses_the_self_signed_server(tls_server: LocalServer) -> None:
    from pinecone_rag import PineconeClient
    from pinecone_rag.errors import PineconeConnectionError

    with (
        PineconeClient(api_key=KEY, host=tls_server.url, retries=0) as pc,
        pytest.raises(PineconeConnectionError),
    ):
        pc.list_indexes()


# --- configuration ------------------------------------------------------------------------------------------


def test_tls_needs_both_files(tmp_path: Path, certs: dict[str, Path]) -> None:
    with pytest.raises(ConfigurationError, match="both"):
        LocalServer(tmp_path, port=0, tls_cert=certs["cert"])
    with pytest.raises(ConfigurationError, match="does not exist"):
        LocalServer(tmp_path, port=0, tls_cert=tmp_path / "missing.pem", tls_key=certs["key"])


def test_serve_command_with_tls_flags(tmp_path: Path, certs: dict[str, Path]) -> None:
    env = {key: value for key, value in os.environ.items() if key != ENV_API_KEYS}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pinecone_rag.cli",
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
            "--port",
            "0",
            "--data-port-start",
            "0",
            "--log-level",
            "warning",
            "--tls-cert",
            str(certs["cert"]),
            "--tls-key",
            str(certs["key"]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        line = ""
        while "serving" not in line:
            assert time.monotonic() < deadline, "serve did not start"
            line = process.stdout.readline()
            assert line or process.poll() is None, process.stderr.read() if process.stderr else ""
        url = line.rsplit(" on ", 1)[1].strip()
        assert url.startswith("https://")
        response = httpx.get(f"{url}/health", verify=trusted(certs), timeout=10)
        assert response.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()

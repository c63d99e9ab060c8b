"""The official openai SDK over HTTPS: Gatehouse started with LiteLLM's TLS flags and a
self-signed certificate made here, trusted by the SDK's HTTP client and nothing else."""

import datetime
import ipaddress
import ssl
import tempfile
from pathlib import Path

import httpx2
import openai
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import MASTER_KEY, read_chat_stream, start_gateway


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gatehouse test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_gateway(mock_url):
    cert_path, key_path = self_signed(Path(tempfile.mkdtemp()))
    config = f"""
model_list:
  - model_name: gpt-test
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {mock_url}/v1
      api_key: sk-upstream
general_settings:
  master_key: {MASTER_KEY}
"""
    gw = start_gateway(
        config,
        # The certificate names 127.0.0.1; the announced address must match it.
        args=[
            "--host", "127.0.0.1",
            "--ssl_certfile_path", str(cert_path),
            "--ssl_keyfile_path", str(key_path),
        ],
    )
    gw.cert_path = cert_path
    yield gw
    gw.stop()


def client(gw):
    trust = ssl.create_default_context(cafile=str(gw.cert_path))
    return openai.OpenAI(
        base_url=f"{gw.url}/v1",
        api_key=MASTER_KEY,
        max_retries=0,
        http_client=httpx2.Client(verify=trust),
    )


def test_gateway_announces_https(tls_gateway):
    assert tls_gateway.url.startswith("https://")


def test_chat_completion_over_https(tls_gateway):
    resp = client(tls_gateway).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hello over tls"}]
    )
    assert resp.choices[0].message.content == "Echo: hello over tls"
    assert resp.usage.total_tokens > 0


def test_chat_stream_over_https(tls_gateway):
    stream = client(tls_gateway).chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "stream over tls"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = read_chat_stream(stream)
    assert text == "Echo: stream over tls"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


def test_sdk_without_the_certificate_refuses_the_server(tls_gateway):
    untrusting = openai.OpenAI(
        base_url=f"{tls_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0
    )
    with pytest.raises(openai.APIConnectionError):
        untrusting.models.list()


def test_sdk_pointed_at_http_gets_a_clear_error(tls_gateway):
    plain = openai.OpenAI(
        base_url=tls_gateway.url.replace("https://", "http://") + "/v1",
        api_key=MASTER_KEY,
        max_retries=0,
    )
    with pytest.raises(openai.BadRequestError) as err:
        plain.models.list()
    assert "https://" in str(err.value)

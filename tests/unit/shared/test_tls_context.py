"""Outgoing HTTP clients share one TLS context: building one reads the whole CA bundle."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest

from afflux.shared.io.http import tls

pytestmark = [pytest.mark.unit]

END = "-----END CERTIFICATE-----"


@pytest.fixture(autouse=True)
def fresh_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    tls.tls_context.cache_clear()
    yield
    tls.tls_context.cache_clear()


def test_the_context_is_built_once_and_verifies_peers_against_certifi() -> None:
    first = tls.tls_context()
    assert tls.tls_context() is first
    assert first.verify_mode == ssl.CERT_REQUIRED
    assert first.check_hostname
    assert first.cert_store_stats()["x509_ca"] == certifi.contents().count(END)


def test_ssl_cert_file_names_the_only_trusted_authorities(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    one = tmp_path / "one-ca.pem"
    one.write_text(certifi.contents().split(END)[0] + END + "\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(one))
    assert tls.tls_context().cert_store_stats()["x509_ca"] == 1


def test_a_missing_ssl_cert_file_fails_loudly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "absent.pem"))
    with pytest.raises(FileNotFoundError):
        tls.tls_context()

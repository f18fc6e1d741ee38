"""The Redis password setting reaches the URL the services connect with, and a URL with
a password is printed without it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from afflux.shared.redis_url import redacted, with_password
from afflux.shared.secret_policy import settings_error
from afflux.shared.settings import CommonSettings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AFFLUX_"):
            monkeypatch.delenv(name)


@dataclass(frozen=True)
class Case:
    name: str
    url: str
    password: str
    expected: str


CASES = [
    # the usual: compose's URL and the secret file's password
    Case("plain", "redis://redis:6379/1", "pw", "redis://:pw@redis:6379/1"),
    # characters that mean something in a URL are percent-encoded
    Case("special", "redis://redis:6379/1", "a@b/c:d", "redis://:a%40b%2Fc%3Ad@redis:6379/1"),
    # an ACL user in the URL keeps its name
    Case("user kept", "redis://afflux@redis:6379/2", "pw", "redis://afflux:pw@redis:6379/2"),
    # TLS and cluster URLs carry it the same way
    Case("tls", "rediss://redis:6380/0", "pw", "rediss://:pw@redis:6380/0"),
    Case("cluster", "redis-cluster://a:7001,b:7002", "pw", "redis-cluster://:pw@a:7001,b:7002"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_password_is_added_to_the_url(case: Case) -> None:
    assert with_password(case.url, case.password) == case.expected


def test_redis_reads_back_the_password_it_was_given() -> None:
    client = Redis.from_url(with_password("redis://redis:6379/1", "a@b/c:d %"))
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["password"], kwargs["db"], kwargs["host"]) == ("a@b/c:d %", 1, "redis")


def test_a_password_in_the_url_and_the_setting_is_refused_naming_both() -> None:
    with pytest.raises(ValueError, match="AFFLUX_REDIS_URL holds a password and AFFLUX_REDIS"):
        with_password("redis://:old@redis:6379/1", "new")


def test_the_password_file_reaches_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "redis_password").write_text("s3cret\n")
    monkeypatch.setenv("AFFLUX_REDIS_URL", "redis://redis:6379/3")
    monkeypatch.setenv("AFFLUX_REDIS_PASSWORD_FILE", str(tmp_path / "redis_password"))
    settings = CommonSettings()
    assert settings.redis_url == "redis://:s3cret@redis:6379/3"
    assert "s3cret" not in repr(settings)


def test_no_password_leaves_the_url_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFLUX_REDIS_URL", "redis://redis:6379/3")
    assert CommonSettings().redis_url == "redis://redis:6379/3"


def test_two_passwords_are_a_start_up_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFLUX_REDIS_URL", "redis://:0ld-pw@redis:6379/3")
    monkeypatch.setenv("AFFLUX_REDIS_PASSWORD", "n3w-pw")
    with pytest.raises(ValidationError) as raised:
        CommonSettings()
    line = settings_error(raised.value)
    assert "AFFLUX_REDIS_PASSWORD is set too" in line
    assert "0ld-pw" not in line
    assert "n3w-pw" not in line


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@redis:6379/1", "redis://:***@redis:6379/1"),
        ("redis://user:pw@redis:6379/1", "redis://user:***@redis:6379/1"),
        ("redis://redis:6379/1", "redis://redis:6379/1"),  # nothing to hide
        ("redis://user@redis:6379/1", "redis://user@redis:6379/1"),  # a name is no secret
    ],
)
def test_a_printed_url_hides_the_password(url: str, shown: str) -> None:
    assert redacted(url) == shown

"""Any setting from a file named by ``AFFLUX_<NAME>_FILE``: the value, and the refusals
that name the variables and the path, never the content."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import ValidationError

from afflux.orders.settings import OrdersSettings
from afflux.shared.secret_policy import settings_error
from afflux.shared.setting_files import file_values
from afflux.shared.settings import CommonSettings

pytestmark = pytest.mark.unit

TOKEN = "t" * 40


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AFFLUX_"):
            monkeypatch.delenv(name)


@dataclass(frozen=True)
class Case:
    name: str
    env: dict[str, str]  # "{dir}" stands for the folder holding ``files``
    files: dict[str, bytes] = field(default_factory=dict)
    token: str | None = None  # the admin token the settings end up with
    refusal: str | None = None  # a part of the one-line start-up error


CASES = [
    # the file's content is the value
    Case("plain file", {"AFFLUX_ADMIN_TOKEN_FILE": "{dir}/t"}, {"t": TOKEN.encode()}, TOKEN),
    # the line break echo and editors add is not part of the secret
    Case("trailing newline", {"AFFLUX_ADMIN_TOKEN_FILE": "{dir}/t"}, {"t": b"abc\n"}, "abc"),
    # a Windows line ending is one line break too
    Case("trailing crlf", {"AFFLUX_ADMIN_TOKEN_FILE": "{dir}/t"}, {"t": b"abc\r\n"}, "abc"),
    # only one line break goes: a second one belongs to the value
    Case("two newlines", {"AFFLUX_ADMIN_TOKEN_FILE": "{dir}/t"}, {"t": b"abc\n\n"}, "abc\n"),
    # leading and inner spaces are the value's own
    Case("spaces kept", {"AFFLUX_ADMIN_TOKEN_FILE": "{dir}/t"}, {"t": b" a b \n"}, " a b "),
    # variable names match in any case, as the plain variables do
    Case("lower-case name", {"afflux_admin_token_file": "{dir}/t"}, {"t": b"abc"}, "abc"),
    # an empty _FILE variable is unset: the plain variable is used
    Case(
        "empty file variable", {"AFFLUX_ADMIN_TOKEN_FILE": "", "AFFLUX_ADMIN_TOKEN": "v"}, {}, "v"
    ),
    # an empty plain variable is unset: the file is used, no conflict
    Case(
        "empty plain variable",
        {"AFFLUX_ADMIN_TOKEN_FILE": "{dir}/t", "AFFLUX_ADMIN_TOKEN": ""},
        {"t": b"abc"},
        "abc",
    ),
    # neither: the default
    Case("neither", {}, {}, None),
    # both set: ambiguous, refused naming both
    Case(
        "both set",
        {"AFFLUX_ADMIN_TOKEN_FILE": "{dir}/t", "AFFLUX_ADMIN_TOKEN": "v"},
        {"t": b"abc"},
        refusal="AFFLUX_ADMIN_TOKEN and AFFLUX_ADMIN_TOKEN_FILE are both set; set only one",
    ),
    # a missing file names the variable and the path
    Case(
        "missing file",
        {"AFFLUX_ADMIN_TOKEN_FILE": "{dir}/absent"},
        refusal="AFFLUX_ADMIN_TOKEN_FILE: cannot read {dir}/absent: No such file or directory",
    ),
    # a directory is not a value
    Case(
        "a directory",
        {"AFFLUX_ADMIN_TOKEN_FILE": "{dir}"},
        refusal="AFFLUX_ADMIN_TOKEN_FILE: cannot read {dir}: Is a directory",
    ),
    # bytes that are not UTF-8 text
    Case(
        "not utf-8",
        {"AFFLUX_ADMIN_TOKEN_FILE": "{dir}/t"},
        {"t": b"\xff\xfe"},
        refusal="AFFLUX_ADMIN_TOKEN_FILE: {dir}/t is not UTF-8 text",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_file_variable_gives_its_setting_or_a_clear_refusal(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, content in case.files.items():
        (tmp_path / name).write_bytes(content)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value.replace("{dir}", str(tmp_path)))
    if case.refusal is None:
        assert CommonSettings().admin_token_value() == case.token
        return
    with pytest.raises(ValidationError) as raised:
        CommonSettings()
    line = settings_error(raised.value)
    assert line == case.refusal.replace("{dir}", str(tmp_path))
    for content in case.files.values():
        assert content.decode(errors="replace") not in line


def test_every_setting_can_come_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "partitions").write_text("7\n")
    (tmp_path / "url").write_text("redis://redis.internal:6379/5\n")
    monkeypatch.setenv("AFFLUX_TOPIC_PARTITIONS_FILE", str(tmp_path / "partitions"))
    monkeypatch.setenv("AFFLUX_REDIS_URL_FILE", str(tmp_path / "url"))
    settings = CommonSettings()
    assert settings.topic_partitions == 7
    assert settings.redis_url == "redis://redis.internal:6379/5"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    environ = {
        "AFFLUX_ADMIN_TOKEN": "v",
        "AFFLUX_ADMIN_TOKEN_FILE": str(tmp_path / "t"),
        "AFFLUX_REDIS_URL_FILE": str(tmp_path / "absent"),
    }
    values, problems = file_values("AFFLUX_", ["admin_token", "redis_url"], environ)
    assert values == {}
    assert [p.split(" ")[0] for p in problems] == ["AFFLUX_ADMIN_TOKEN", "AFFLUX_REDIS_URL_FILE:"]


def test_a_file_setting_of_its_own_keeps_its_meaning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # orders' merchant_secrets_file names a YAML/JSON file the service parses itself
    secrets = tmp_path / "merchant_secrets.json"
    secrets.write_text('{"m": ["' + "s" * 40 + '"]}\n')
    monkeypatch.setenv("AFFLUX_MERCHANT_SECRETS_FILE", str(secrets))
    settings = OrdersSettings()
    assert settings.merchant_secrets_file == secrets
    assert settings.merchant_secrets is None

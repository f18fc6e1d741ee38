"""``AFFLUX_<NAME>_FILE``: any setting read from a file instead of the environment.

A variable ending in ``_FILE`` names a file whose content is the value of the setting
without the suffix (``AFFLUX_ADMIN_TOKEN_FILE=/run/secrets/admin_token`` gives
``admin_token``), so a secret mounted by the container runtime never shows in the
process environment or in ``docker inspect``. One trailing line break is dropped (the
one ``echo`` and editors add); anything else in the file is the value.

Refused at start-up, naming the variables and never the content: both a variable and
its ``_FILE`` set, and a file that cannot be read as UTF-8 text. An empty variable
counts as unset. A field that declares its own ``<name>_file`` setting (orders'
``merchant_secrets_file``, a YAML/JSON file) keeps that meaning.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

SUFFIX = "_FILE"


def without_line_break(text: str) -> str:
    """``text`` less one trailing ``\\n`` or ``\\r\\n``."""
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


def read_value(variable: str, path: str) -> str:
    """The value in the file ``path`` names; ValueError naming ``variable`` and ``path``."""
    try:
        return without_line_break(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{variable}: {path} is not UTF-8 text") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"{variable}: cannot read {path}: {reason}") from None


def file_values(
    prefix: str, fields: Iterable[str], environ: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Values of ``fields`` given through ``<prefix><FIELD>_FILE``, and the problems found.

    Names match case-insensitively, as pydantic-settings matches the plain variables.
    """
    given = {name.upper(): value for name, value in environ.items() if value}
    values: dict[str, str] = {}
    problems: list[str] = []
    names = set(fields)
    for field in sorted(names):
        if f"{field}_file" in names:
            continue  # the field's own file setting, with its own format
        variable = f"{prefix}{field}".upper()
        path = given.get(variable + SUFFIX)
        if path is None:
            continue
        if variable in given:
            problems.append(f"{variable} and {variable}{SUFFIX} are both set; set only one")
            continue
        try:
            values[field] = read_value(variable + SUFFIX, path)
        except ValueError as exc:
            problems.append(str(exc))
    return values, problems


class FileVariables(PydanticBaseSettingsSource):
    """The settings source of ``*_FILE`` variables (see the module docstring)."""

    def __init__(
        self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(settings_cls)
        self._environ = os.environ if environ is None else environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads every field at once

    def __call__(self) -> dict[str, Any]:
        prefix = str(self.config.get("env_prefix") or "")
        values, problems = file_values(prefix, self.settings_cls.model_fields, self._environ)
        if problems:
            raise ValidationError.from_exception_data(
                self.settings_cls.__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("setting_file", "{problem}", {"problem": problem}),
                        loc=(),
                        input=None,
                    )
                    for problem in problems
                ],
            )
        return values

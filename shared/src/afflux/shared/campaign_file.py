"""Campaign terms files (YAML) as used by ``afflux campaigns apply``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_core import PydanticCustomError

from afflux.shared import yaml_mappings
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.core.terms_checks import publish_problems
from afflux.shared.events import EventTime


class CampaignEntry(BaseModel):
    """One campaign in a terms file, optionally with the time its terms apply from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    effective_from: EventTime | None = None
    terms: CampaignTerms

    # What is published (the body of PUT /v1/campaigns/{id}, each entry of a terms file)
    # must also pass afflux.shared.core.terms_checks: no coupon code or survey handle
    # given twice, allowed domains that are sites. Checked here, not in CampaignTerms,
    # which also decodes the versions already on the campaigns topic: terms published
    # before these checks must still load on a replay. (A comment, not the docstring:
    # that is the schema's description, docs/campaigns.schema.json.)
    @field_validator("terms", mode="wrap")
    @classmethod
    def _publishable(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> CampaignTerms:
        terms: CampaignTerms = handler(value)
        # The terms as sent: the model has already merged keys that normalise alike.
        sent = value if isinstance(value, Mapping) else terms.model_dump()
        problems = publish_problems(sent)
        if problems:
            raise PydanticCustomError("unpublishable_terms", "{problem}", {"problem": problems[0]})
        return terms


class CampaignFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    campaigns: Annotated[tuple[CampaignEntry, ...], Field(min_length=1)]


class InvalidCampaignFile(ValueError):
    pass


def load_campaign_file(path: Path) -> CampaignFile:
    """Parse and validate a campaigns YAML file, naming the path of any bad field."""
    try:
        raw: Any = yaml_mappings.load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidCampaignFile(f"{path}: {exc}") from exc
    try:
        return CampaignFile.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        # A list whose every entry failed is also "too short" once they are left out: said
        # beside the entries' own errors it sent the reader to look for a missing list.
        named = {e["loc"][:1] for e in errors if len(e["loc"]) > 1}
        shown = [e for e in errors if not (e["type"] == "too_short" and e["loc"] in named)]
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in shown[:10])
        raise InvalidCampaignFile(f"{path}: {details}") from exc

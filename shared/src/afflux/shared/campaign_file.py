"""Campaign terms files (YAML) as used by ``afflux campaigns apply``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from afflux.shared.core.terms import CampaignTerms
from afflux.shared.events import EventTime


class CampaignEntry(BaseModel):
    """One campaign in a terms file, optionally with the time its terms apply from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    effective_from: EventTime | None = None
    terms: CampaignTerms


class CampaignFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    campaigns: Annotated[tuple[CampaignEntry, ...], Field(min_length=1)]


class InvalidCampaignFile(ValueError):
    pass


def load_campaign_file(path: Path) -> CampaignFile:
    """Parse and validate a campaigns YAML file, naming the path of any bad field."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidCampaignFile(f"{path}: {exc}") from exc
    try:
        return CampaignFile.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10]
        )
        raise InvalidCampaignFile(f"{path}: {details}") from exc

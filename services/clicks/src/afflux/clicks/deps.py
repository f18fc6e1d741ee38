"""What the clicks routes depend on, as ``Annotated`` aliases read from the app's state.

``create_app`` puts each value on ``app.state``; a route names the ones it touches
in its signature (afflux.shared.io.http.state). The redirect hot path is a raw ASGI layer
(afflux.clicks.redirect) and takes its ``ClickContext`` from the app instead.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from afflux.clicks.links import LinkCache, LinkStore
from afflux.clicks.settings import ClicksSettings
from afflux.shared.core.clock import Clock
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.admin import AdminDep
from afflux.shared.io.http.state import state_dep

__all__ = [
    "AdminDep",
    "CacheDep",
    "ClockDep",
    "DirectoryDep",
    "SettingsDep",
    "StoreDep",
]


StoreDep = Annotated[LinkStore, Depends(state_dep("store"))]
CacheDep = Annotated[LinkCache, Depends(state_dep("cache"))]
DirectoryDep = Annotated[CampaignDirectory, Depends(state_dep("directory"))]
SettingsDep = Annotated[ClicksSettings, Depends(state_dep("settings"))]
ClockDep = Annotated[Clock, Depends(state_dep("clock"))]

"""What the clicks routes depend on, as ``Annotated`` aliases read from the app's state.

``create_app`` puts each value on ``app.state``; a route names the ones it touches
in its signature. Every dependency is ``async def fn(request)`` so it runs on the
event loop (no thread-pool hop). The redirect hot path is a raw ASGI layer
(afflux.clicks.redirect) and takes its ``ClickContext`` from the app instead.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from afflux.clicks.links import LinkCache, LinkStore
from afflux.clicks.settings import ClicksSettings
from afflux.shared.campaign_view import CampaignDirectory
from afflux.shared.core.clock import Clock
from afflux.shared.http.admin import AdminDep

__all__ = [
    "AdminDep",
    "CacheDep",
    "ClockDep",
    "DirectoryDep",
    "SettingsDep",
    "StoreDep",
]


async def store_of(request: Request) -> LinkStore:
    store: LinkStore = request.app.state.store
    return store


async def cache_of(request: Request) -> LinkCache:
    cache: LinkCache = request.app.state.cache
    return cache


async def directory_of(request: Request) -> CampaignDirectory:
    directory: CampaignDirectory = request.app.state.directory
    return directory


async def settings_of(request: Request) -> ClicksSettings:
    settings: ClicksSettings = request.app.state.settings
    return settings


async def clock_of(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


StoreDep = Annotated[LinkStore, Depends(store_of)]
CacheDep = Annotated[LinkCache, Depends(cache_of)]
DirectoryDep = Annotated[CampaignDirectory, Depends(directory_of)]
SettingsDep = Annotated[ClicksSettings, Depends(settings_of)]
ClockDep = Annotated[Clock, Depends(clock_of)]

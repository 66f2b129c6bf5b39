"""Build the router: its tables, their follower, and its two stages sharing them."""

from __future__ import annotations

from streams.config import Settings
from streams.router.stages import RouterStage, RouterTables, WaitingStage
from streams.stage import Stage


def build_router(settings: Settings) -> list[Stage]:
    """The router's stages; their tables (this replica's state folder) start following the
    changelogs at once, and each stage reports ready (:class:`~streams.stage.WarmingStage`)
    once they are restored."""
    tables = RouterTables.open(settings)
    follower = tables.follower(settings).start()
    return [
        RouterStage(tables, follower, settings.router),
        WaitingStage(tables, follower, settings.router),
    ]

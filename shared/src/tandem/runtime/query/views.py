"""Per read model state of a query process: its reader, caches, waiters and sockets.

Everything keyed by a document id lives here, once per read model, so the same id in two read
models (or two apps) never shares a cache entry, a waiter or a search page. The process's one
notice subscriber hands each notice to the view ``ChangeNotice.read_model`` names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tandem.app import App, ReadModelSpec
from tandem.read_model.service import ReadModelService
from tandem.runtime.contract import ChangeNotice
from tandem.runtime.query.cache import DocumentCache
from tandem.runtime.query.collections import ActiveCollections
from tandem.runtime.query.fanout import RedisChangeFeed
from tandem.runtime.query.notices import READ_MODEL_SWITCHED
from tandem.runtime.query.reader import ActiveRepository
from tandem.runtime.query.search_cache import SearchCache
from tandem.runtime.query.versions import VersionWaiters

Document = dict[str, Any]


@dataclass
class ReadModelView:
    app: App
    spec: ReadModelSpec
    collections: ActiveCollections
    repository: ActiveRepository
    cache: DocumentCache
    service: ReadModelService[Any]
    """The library's read service over the repository and cache: what the handlers use."""
    searches: SearchCache
    waiters: VersionWaiters = field(default_factory=VersionWaiters)
    feed: RedisChangeFeed | None = None
    """Only for a live read model: the change feed its WebSocket endpoint subscribes to."""
    resync_required: Callable[[], None] | None = None
    """Set when its endpoint is registered: tells its clients notices may have been lost."""

    @property
    def name(self) -> str:
        return self.spec.name

    def on_notice(self, notice: ChangeNotice, raw: bytes) -> None:
        # Order matters: caches first, so a woken waiter or a client that re-reads at once
        # cannot be served the entry the notice just made stale.
        if notice.event_type == READ_MODEL_SWITCHED:
            self.collections.invalidate(self.spec.collection)
            self.cache.clear_memory()
        self.cache.on_notice(notice)
        self.searches.invalidate()
        self.waiters.on_notice(notice)
        if self.feed is not None:
            self.feed.on_notice(notice, raw)

    def on_reconnect(self) -> None:
        """Notices may have been lost: forget what they would have invalidated."""
        self.cache.clear_memory()
        self.searches.invalidate()
        self.collections.invalidate(self.spec.collection)
        self.waiters.wake_all()
        if self.resync_required is not None:
            self.resync_required()


class Views:
    """Every read model of the served apps, by name (names are unique across apps)."""

    def __init__(self, views: list[ReadModelView]) -> None:
        self.by_name = {view.name: view for view in views}

    def __iter__(self) -> Any:
        return iter(self.by_name.values())

    def __getitem__(self, name: str) -> ReadModelView:
        return self.by_name[name]

    @property
    def channels(self) -> list[str]:
        return [view.spec.channel for view in self]

    @property
    def live(self) -> list[ReadModelView]:
        return [view for view in self if view.feed is not None]

    def on_notice(self, notice: ChangeNotice, raw: bytes) -> None:
        view = self.by_name.get(notice.read_model)
        if view is not None:  # another deployment's read model on a shared Redis
            view.on_notice(notice, raw)

    def on_reconnect(self) -> None:
        for view in self:
            view.on_reconnect()

"""Which read models one projector process maintains, and what that implies: the topics it
subscribes to, its consumer group, and which app each record belongs to.

A projector group serves a chosen set of read models (all of the loaded apps by default), so
each set can scale, lag, dead-letter and rebuild on its own. A read model only ever sees the
events of the types its projection declares; a totals read model is derived from its source's
fold in the same batch, so the source must be served beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tandem.app import AggregateSpec, App, AppError, FoldProjection, ReadModelSpec
from tandem.runtime.projector.settings import GROUP_PREFIX, ProjectorSettings


@dataclass(frozen=True)
class AppPart:
    """The read models of one app this process serves, and the topics that feed them."""

    app: App
    folds: tuple[ReadModelSpec, ...]
    totals: tuple[ReadModelSpec, ...]
    topics: dict[str, AggregateSpec]

    @property
    def read_models(self) -> tuple[ReadModelSpec, ...]:
        return (*self.folds, *self.totals)

    def totals_of(self, fold: ReadModelSpec) -> list[ReadModelSpec]:
        return [rm for rm in self.app.derived_from(fold) if rm in self.totals]


@dataclass(frozen=True)
class Served:
    parts: tuple[AppPart, ...]
    group_id: str

    @property
    def topics(self) -> list[str]:
        return [topic for part in self.parts for topic in part.topics]

    def part_for_topic(self, topic: str) -> AppPart:
        for part in self.parts:
            if topic in part.topics:
                return part
        raise KeyError(topic)

    @property
    def read_models(self) -> list[ReadModelSpec]:
        return [rm for part in self.parts for rm in part.read_models]


def topic_in(aggregate: AggregateSpec, prefix: str) -> str:
    """The aggregate's topic behind ``prefix`` (``settings.topic_prefix``, shared with the
    command-service)."""
    return prefix + aggregate.topic


def declared(apps: Sequence[App]) -> list[str]:
    return [rm.name for app in apps for rm in app.read_models]


def select(apps: Sequence[App], settings: ProjectorSettings) -> Served:
    """The read models named by ``settings.read_models`` (all when empty); a clear
    :class:`~tandem.app.AppError` for an unknown name or a totals read model without its
    source."""
    everything = declared(apps)
    wanted = list(dict.fromkeys(settings.read_models)) or everything
    unknown = [name for name in wanted if name not in everything]
    if unknown:
        raise AppError(f"unknown read model(s) {unknown}; declared: {', '.join(everything)}")
    parts = []
    for app in apps:
        chosen = [rm for rm in app.read_models if rm.name in wanted]
        for rm in chosen:
            if not rm.is_fold and app.source_of(rm) not in chosen:
                raise AppError(
                    f"{rm.name} is derived from {app.source_of(rm).name}: serve both in one "
                    f"projector group (TANDEM_READ_MODELS={rm.name},{app.source_of(rm).name})"
                )
        folds = tuple(rm for rm in chosen if rm.is_fold)
        if not folds:
            continue
        consumed = {
            t
            for rm in folds
            if isinstance(rm.projection, FoldProjection)
            for t in rm.projection.event_types
        }
        topics = {
            topic_in(a, settings.topic_prefix): a
            for a in app.aggregates
            if consumed & set(a.event_types)
        }
        parts.append(AppPart(app, folds, tuple(rm for rm in chosen if not rm.is_fold), topics))
    if not parts:
        raise AppError(f"nothing to project: no fold read model among {wanted}")
    if settings.topics:
        parts = _override_topics(parts, settings.topics)
    if sorted(wanted) == sorted(everything):
        group = settings.group_id or GROUP_PREFIX
    else:
        group = settings.group_id or f"{GROUP_PREFIX}.{'.'.join(sorted(wanted))}"
    return Served(tuple(parts), group)


def _override_topics(parts: list[AppPart], topics: list[str]) -> list[AppPart]:
    aggregates = [a for part in parts for a in part.topics.values()]
    if len(parts) != 1 or len(aggregates) != 1:
        raise AppError(
            "TANDEM_TOPICS replaces the derived topics only when the served read models "
            "consume one aggregate type; choose them with TANDEM_READ_MODELS"
        )
    part = parts[0]
    return [AppPart(part.app, part.folds, part.totals, dict.fromkeys(topics, aggregates[0]))]

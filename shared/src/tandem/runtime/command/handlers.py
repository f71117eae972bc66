"""Command handlers: load the product, let it decide, append one commit, queue the publish.

Plain async callables registered on the mediator in :mod:`command_service.bootstrap`. They
raise typed errors (the mediator turns them into ``Failure`` values) and never talk HTTP.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymongo.errors import ConnectionFailure, ExecutionTimeout, WTimeoutError
from tandem.aggregate import AggregateRepository
from tandem.errors import ConcurrencyError, DomainError, TandemError
from tandem.event_store import commit_id_for
from tandem_catalog import (
    ChangeProductPrice,
    CommandAccepted,
    CreateProduct,
    DiscontinueProduct,
    Product,
    UpdateProductDetails,
)

from tandem.runtime.command.publishing import OutgoingCommit

Submit = Callable[[OutgoingCommit], None]
# Errors that mean "MongoDB did not answer", as opposed to "MongoDB said no".
STORE_DOWN = (ConnectionFailure, ExecutionTimeout, WTimeoutError)


class ServiceUnavailable(TandemError):
    """The event store cannot be reached (or is not ready): 503, retry later."""

    status_code = 503

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def version_conflict(aggregate_id: str, expected: int | None, current: int) -> DomainError:
    """409 carrying the current version, so the client can re-read and retry."""
    return DomainError(
        "concurrency_conflict",
        f"product {aggregate_id!r} is at version {current}, not {expected}",
        status_code=409,
        details={"id": aggregate_id, "expected_version": expected, "current_version": current},
    )


class ProductHandlers:
    """One method per command; ``ready`` is cleared until the event store's indexes exist,
    because writing before the unique index exists could let two writers share a version."""

    def __init__(self, repository: AggregateRepository[Product], submit: Submit) -> None:
        self._repository = repository
        self._submit = submit
        self.ready = False

    def handlers(self) -> dict[type[Any], Callable[[Any], Awaitable[CommandAccepted]]]:
        return {
            CreateProduct: self.create,
            UpdateProductDetails: self.update_details,
            ChangeProductPrice: self.change_price,
            DiscontinueProduct: self.discontinue,
        }

    async def create(self, command: CreateProduct) -> CommandAccepted:
        product = Product.create(
            command.product_id,
            name=command.name,
            description=command.description,
            price=command.price,
            category=command.category,
            correlation_id=command.correlation_id,
            causation_id=command.command_id,
        )
        return await self._save(product, expected=None)

    async def update_details(self, command: UpdateProductDetails) -> CommandAccepted:
        return await self._change(
            command,
            lambda product: product.update_details(
                name=command.name,
                description=command.description,
                category=command.category,
                **_causes(command),
            ),
        )

    async def change_price(self, command: ChangeProductPrice) -> CommandAccepted:
        return await self._change(
            command, lambda product: product.change_price(command.price, **_causes(command))
        )

    async def discontinue(self, command: DiscontinueProduct) -> CommandAccepted:
        return await self._change(
            command, lambda product: product.discontinue(command.reason, **_causes(command))
        )

    async def _change(
        self, command: ProductChange, decide: Callable[[Product], object]
    ) -> CommandAccepted:
        """Decide on the product as this process last saw it, when it has it: no read. Only
        an appended commit proves that state current (the unique version would have refused
        it otherwise); a rejection, a no-op or a version mismatch on it may be stale, so
        those are decided again on a fresh load, as is a conflict."""
        self._check_ready()
        product_id, expected = command.product_id, command.expected_version
        cached = self._repository.cached(product_id)
        if cached is not None and (expected is None or expected == cached.version):
            try:
                decide(cached)
            except DomainError:
                cached = None
            if cached is not None and cached.pending_events:
                try:
                    return await self._append(cached)
                except ConcurrencyError:
                    pass  # another process appended since: the repository forgot it
        product = await self._load(product_id, expected)
        decide(product)
        return await self._save(product, expected)

    async def _load(self, product_id: str, expected: int | None) -> Product:
        self._check_ready()
        try:
            product = await self._repository.load(product_id)
        except STORE_DOWN as exc:
            raise _store_down(exc) from exc
        if expected is not None and expected != product.version:
            raise version_conflict(product_id, expected, product.version)
        return product

    async def _save(self, product: Product, expected: int | None) -> CommandAccepted:
        self._check_ready()
        pending = product.pending_events
        if not pending:  # nothing changed: answer with the current version, append nothing
            return CommandAccepted(id=product.id, version=product.version)
        try:
            return await self._append(product)
        except ConcurrencyError as exc:
            raise version_conflict(product.id, expected, exc.actual_version) from None

    async def _append(self, product: Product) -> CommandAccepted:
        try:
            events = await self._repository.save(product)
        except STORE_DOWN as exc:
            raise _store_down(exc) from exc
        self._submit(OutgoingCommit(commit_id_for(product.id, events[0].version), tuple(events)))
        return CommandAccepted(id=product.id, version=events[-1].version)

    def _check_ready(self) -> None:
        if not self.ready:
            raise ServiceUnavailable(
                "service_starting", "the event store is not ready yet (indexes are being created)"
            )


ProductChange = UpdateProductDetails | ChangeProductPrice | DiscontinueProduct


def _causes(command: ProductChange) -> dict[str, Any]:
    """What every event a command raises carries back to it."""
    return {"correlation_id": command.correlation_id, "causation_id": command.command_id}


def _store_down(exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(
        "event_store_unavailable", f"the event store is unreachable ({type(exc).__name__})"
    )

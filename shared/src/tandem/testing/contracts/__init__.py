"""Reusable contract test suites, one per port: subclass one in your own test module to check
an adapter of yours behaves exactly like Tandem's in-memory and server-backed ones.

* :class:`EventStoreContract` — needs an ``event_store`` fixture (a fresh, empty store);
* :class:`ReadModelRepositoryContract` — needs a ``repo`` fixture: an empty repository of
  :class:`ContractProduct` read models;
* :class:`CacheContract` — needs a ``cache`` fixture, an empty :class:`~tandem.cache.ReadModelCache`,
  and ``advance``, which moves its clock forward.

The fixture can live on the subclass, in the module or in a ``conftest.py``. The tests are
``async def``: run them with pytest-asyncio in ``asyncio_mode = auto`` (or put
``pytestmark = pytest.mark.asyncio`` on the subclass in strict mode). This package imports
pytest; ``import tandem.testing`` does not import it.
"""

from tandem.testing.contracts.cache import CacheContract, ContractPriceChanged
from tandem.testing.contracts.event_store import (
    ContractItemAdded,
    ContractItemRemoved,
    EventStoreContract,
)
from tandem.testing.contracts.read_model_repository import (
    CONTRACT_CATALOG,
    ContractProduct,
    ReadModelRepositoryContract,
)

__all__ = [
    "CONTRACT_CATALOG",
    "CacheContract",
    "ContractItemAdded",
    "ContractItemRemoved",
    "ContractPriceChanged",
    "ContractProduct",
    "EventStoreContract",
    "ReadModelRepositoryContract",
]

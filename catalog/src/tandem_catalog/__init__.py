"""The product catalog: Tandem's reference app (events, the ``Product`` aggregate and its
commands, the ``products`` and ``category_stats`` read models, queries and the live page).

Imports no I/O library; :mod:`tandem_catalog.app` declares it for the runtime.
"""

from tandem.app import CommandAccepted

from tandem_catalog.commands import (
    ChangeProductPrice,
    CreateProduct,
    DiscontinueProduct,
    UpdateProductDetails,
)
from tandem_catalog.product import Product

__all__ = [
    "ChangeProductPrice",
    "CommandAccepted",
    "CreateProduct",
    "DiscontinueProduct",
    "Product",
    "UpdateProductDetails",
]

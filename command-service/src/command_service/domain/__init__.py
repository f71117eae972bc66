"""The product catalog's write model: the ``Product`` aggregate and its commands.

Imports no I/O library; the events themselves are the shared contract in ``tandem_catalog``.
"""

from command_service.domain.commands import (
    ChangeProductPrice,
    CommandAccepted,
    CreateProduct,
    DiscontinueProduct,
    UpdateProductDetails,
)
from command_service.domain.product import Product

__all__ = [
    "ChangeProductPrice",
    "CommandAccepted",
    "CreateProduct",
    "DiscontinueProduct",
    "Product",
    "UpdateProductDetails",
]

"""The catalog's names, derived from its declaration (:mod:`tandem_catalog.app`).

Transitional: the services still import these while the runtime moves into the library; the
generic shapes live in :mod:`tandem.runtime.contract`.
"""

from __future__ import annotations

from tandem.runtime.contract import (
    CLOUDEVENTS_SOURCE,
    DLQ_SUFFIX,
    READ_MODEL_POINTERS,
    ChangeNotice,
    Headers,
    cloudevent_headers,
    dlq_topic,
)

from tandem_catalog.app import app

_PRODUCTS = app.read_model("products")
PRODUCT_TOPIC = app.aggregates[0].topic
PROJECTOR_GROUP = "tandem-projector"
CHANGES_CHANNEL = _PRODUCTS.channel
PRODUCTS_READ_MODEL = _PRODUCTS.name
CATEGORY_STATS_READ_MODEL = "category_stats"
PRODUCT_CACHE_PREFIX = _PRODUCTS.cache_prefix


def product_cache_key(product_id: str) -> str:
    return _PRODUCTS.cache_key(product_id)


__all__ = [
    "CATEGORY_STATS_READ_MODEL",
    "CHANGES_CHANNEL",
    "CLOUDEVENTS_SOURCE",
    "DLQ_SUFFIX",
    "PRODUCTS_READ_MODEL",
    "PRODUCT_CACHE_PREFIX",
    "PRODUCT_TOPIC",
    "PROJECTOR_GROUP",
    "READ_MODEL_POINTERS",
    "ChangeNotice",
    "Headers",
    "cloudevent_headers",
    "dlq_topic",
    "product_cache_key",
]

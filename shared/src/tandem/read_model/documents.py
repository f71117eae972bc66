"""The one read-model document shape: what the projector writes and every repository reads.

A document is flat: ``_id`` is the id, the read model's fields sit at the top level next to
``version`` (and, when the model has them, ``created_at`` / ``updated_at``). A
:class:`~tandem.read_model.models.ReadModel` maps onto it with its ``data`` keys spread out, so
a model saved through a repository and a document folded by the projector are read, searched
and cached alike. A ``data`` key that would shadow one of those fields is refused rather than
silently lost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from tandem.read_model.models import ReadModel

Document = dict[str, Any]
T = TypeVar("T", bound=ReadModel)
RESERVED = ("_id", "version", "created_at", "updated_at")


def to_document(model: ReadModel) -> Document:
    clash = [key for key in model.data if key in RESERVED]
    if clash:
        raise ValueError(f"read model {model.id.value!r}: data keys {clash} are reserved")
    return {
        "_id": model.id.value,
        "version": model.version,
        "created_at": model.created_at,
        "updated_at": model.updated_at,
        **model.data,
    }


def from_document(model_type: type[T], document: Document) -> T:
    fields: Document = {"id": {"value": str(document["_id"])}}
    data: Document = {}
    for key, value in document.items():
        if key == "_id":
            continue
        if key in RESERVED:
            fields[key] = value
        else:
            data[key] = value
    return model_type.model_validate({**fields, "data": data})


def to_api(document: Document) -> Document:
    """What readers get: the document without ``_id`` (its value as ``id`` unless the document
    carries one), times as ISO 8601 strings. The same JSON the projector caches in Redis."""
    shaped = {key: value for key, value in document.items() if key != "_id"}
    shaped.setdefault("id", document.get("_id"))
    for key in ("created_at", "updated_at"):
        value = shaped.get(key)
        if isinstance(value, datetime):
            shaped[key] = value.isoformat()
    return shaped

"""The MongoDB-wire server the tests use, on the queries and writes Tandem leans on: MongoDB's
answers, and reads by ``_id`` or an index rather than a collection scan.

Concurrency and durability are in ``test_mongo_fidelity.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

pytestmark = pytest.mark.integration


async def _seed(db: AsyncDatabase[dict[str, Any]], n: int) -> None:
    await db["c"].insert_many([{"_id": f"d{i}", "version": 1} for i in range(n)])


async def test_hundreds_of_updates_in_one_command_and_across_commands_complete(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    """The projector's batches: one ``update`` command of many statements, several at once."""
    await _seed(mongo_db, 400)

    def updates(lo: int, hi: int, version: int) -> dict[str, Any]:
        return {
            "update": "c",
            "updates": [
                {"q": {"_id": f"d{i}"}, "u": {"$set": {"version": version}}, "upsert": True}
                for i in range(lo, hi)
            ],
            "ordered": True,
        }

    async with asyncio.timeout(30):
        one = await mongo_db.command(updates(0, 150, 2))
        assert (one["n"], one["nModified"]) == (150, 150)
        many = await asyncio.gather(
            *(mongo_db.command(updates(lo, lo + 50, 3)) for lo in range(0, 400, 50))
        )
        assert [r["nModified"] for r in many] == [50] * 8
        assert await mongo_db["c"].count_documents({"version": 3}) == 400


@pytest.mark.parametrize(
    "query",
    [
        {"_id": "d7"},
        {"_id": "d7", "version": 1},
        {"_id": {"$in": ["d3", "d7", "d11"]}},
    ],
)
async def test_lookups_by_id_read_through_the_index(
    mongo_db: AsyncDatabase[dict[str, Any]], query: dict[str, Any]
) -> None:
    await _seed(mongo_db, 50)
    expected = sorted(
        d["_id"] for d in await mongo_db["c"].find({}).to_list() if _matches(d, query)
    )
    found = sorted([d["_id"] async for d in mongo_db["c"].find(query)])
    assert found
    assert found == expected

    plan = await mongo_db.command({"explain": {"find": "c", "filter": query}})
    assert "COLLSCAN" not in str(plan["queryPlanner"]["winningPlan"]), plan


def _matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    for key, want in query.items():
        if isinstance(want, dict):
            if doc.get(key) not in want["$in"]:
                return False
        elif doc.get(key) != want:
            return False
    return True


CATEGORIES = ["books", "garden tools", "é<&>", 'say "hi"', "back\\slash"]


@pytest.mark.parametrize(
    "query",
    [
        {"category": "books"},
        {"category": "garden tools", "status": "active"},
        {"_id": {"$in": ["d5", "d10", "d7"]}, "category": "books"},
        {"category": "é<&>"},
        {"category": 'say "hi"'},
        {"category": "back\\slash"},
        {"category": "books", "$or": [{"name": {"$regex": "3"}}, {"name": {"$regex": "^x"}}]},
    ],
)
async def test_string_equalities_match_exactly_and_read_through_the_index(
    mongo_db: AsyncDatabase[dict[str, Any]], query: dict[str, Any]
) -> None:
    docs = [
        {
            "_id": f"d{i}",
            "name": f"n{i}",
            "category": CATEGORIES[i % len(CATEGORIES)],
            "status": "active" if i % 3 else "discontinued",
            "price": i,
        }
        for i in range(60)
    ]
    await mongo_db["p"].insert_many(docs)
    await mongo_db["p"].create_index([("category", 1), ("price", 1)], name="category_price")
    expected = sorted(
        d["_id"]
        for d in docs
        if all(d.get(k) == v for k, v in query.items() if k not in ("_id", "$or"))
        and ("_id" not in query or d["_id"] in query["_id"]["$in"])
        and ("$or" not in query or "3" in d["name"])
    )
    assert expected
    assert sorted([d["_id"] async for d in mongo_db["p"].find(query)]) == expected
    assert await mongo_db["p"].count_documents(query) == len(expected)

    plan = await mongo_db.command({"explain": {"find": "p", "filter": query}})
    assert "COLLSCAN" not in str(plan["queryPlanner"]["winningPlan"]), plan


@pytest.mark.parametrize("published", [False, True])
async def test_boolean_equalities_match_exactly_and_read_through_the_index(
    mongo_db: AsyncDatabase[dict[str, Any]], published: bool
) -> None:
    """The outbox relay's question ("which commits are unpublished?") on a large store."""
    docs: list[dict[str, Any]] = [
        {"_id": f"c{i}", "published": i % 7 == 0, "committed_at": i} for i in range(70)
    ]
    docs += [
        {"_id": "no-flag"},
        {"_id": "flag-0", "published": 0},
        {"_id": "flag-str", "published": "false"},
    ]
    await mongo_db["commits"].insert_many(docs)
    await mongo_db["commits"].create_index([("published", 1), ("committed_at", 1)], name="outbox")
    query = {"published": published, "committed_at": {"$lte": 50}}
    expected = sorted(
        d["_id"]
        for d in docs
        if d.get("published") is published and d.get("committed_at", 99) <= 50
    )
    assert expected
    assert sorted([d["_id"] async for d in mongo_db["commits"].find(query)]) == expected
    assert await mongo_db["commits"].count_documents({"published": published}) == sum(
        d.get("published") is published for d in docs
    )

    plan = await mongo_db.command({"explain": {"find": "commits", "filter": query}})
    assert "COLLSCAN" not in str(plan["queryPlanner"]["winningPlan"]), plan


REGEX_DOCS: list[dict[str, Any]] = [
    {"_id": "a", "category": "c", "name": "Desk Lamp", "description": "brass"},
    {"_id": "b", "category": "c", "name": "desk", "description": "a LAMP for reading"},
    {"_id": "c", "category": "c", "name": "Straße", "description": "ÆRØ"},
    {"_id": "d", "category": "c", "name": "chair"},  # no description
    {"_id": "e", "category": "c", "name": "stool", "description": None},
    {"_id": "f", "category": "c", "name": "shelf", "description": ["lamp", "wood"]},
    {"_id": "g", "category": "c", "name": {"nested": "lamp"}, "description": 7},
    {"_id": "h", "category": "other", "name": "lamp post", "description": "street"},
    {"_id": "i", "category": "c", "name": "a+b (x)", "description": "x.y"},
]


def _or(pattern: str, options: str = "") -> dict[str, Any]:
    rx: dict[str, Any] = {"$regex": pattern, **({"$options": options} if options else {})}
    return {"$or": [{"name": rx}, {"description": rx}]}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # MongoDB's answers: a regex matches a string, or any string element of an array.
        (_or("lamp", "i"), ["a", "b", "f", "h"]),
        (_or("lamp"), ["f", "h"]),
        ({"category": "c", **_or("lamp", "i")}, ["a", "b", "f"]),
        ({"category": "c", **_or("ærø", "i")}, ["c"]),
        ({"category": "c", **_or("STRASSE", "i")}, []),  # no full case folding, as MongoDB
        ({"category": "c", **_or("straße", "i")}, ["c"]),
        ({"category": "c", **_or(r"a\+b \(x\)")}, ["i"]),
        ({"category": "c", **_or("^desk$", "i")}, ["b"]),
        ({"description": {"$regex": "^brass$"}}, ["a"]),
        ({"name": {"$regex": "O", "$options": "i"}, "category": "c"}, ["e"]),
    ],
)
async def test_regex_searches_match_like_mongodb(
    mongo_db: AsyncDatabase[dict[str, Any]], query: dict[str, Any], expected: list[str]
) -> None:
    """The query side's search (`q` on name or description), including rows whose field is
    missing, null, an array, a number or a document."""
    await mongo_db["s"].insert_many(REGEX_DOCS)
    await mongo_db["s"].create_index("category")
    assert sorted([d["_id"] async for d in mongo_db["s"].find(query)]) == expected
    assert await mongo_db["s"].count_documents(query) == len(expected)

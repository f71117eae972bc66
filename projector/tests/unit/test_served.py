"""Which read models a projector serves: its consumer group and topics follow the chosen set;
a totals read model without its source, or an unknown name, is a clear start-up error."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tandem.app import AppError
from tandem.runtime.projector.served import select
from tandem.runtime.projector.settings import ProjectorSettings
from tandem_catalog.app import app as catalog

pytestmark = pytest.mark.unit


def _settings(**values: object) -> ProjectorSettings:
    return ProjectorSettings(environment="development", **values)  # type: ignore[arg-type]


def test_everything_by_default_in_the_plain_group() -> None:
    served = select([catalog], _settings())
    assert served.group_id == "tandem-projector"
    assert served.topics == ["tandem.product.events"]
    assert [rm.name for rm in served.read_models] == ["products", "category_stats"]


def test_a_subset_gets_its_own_group() -> None:
    served = select([catalog], _settings(read_models=["products"]))
    assert served.group_id == "tandem-projector.products"
    assert [rm.name for rm in served.read_models] == ["products"]
    assert served.topics == ["tandem.product.events"]
    named = select([catalog], _settings(read_models=["products"], group_id="mine"))
    assert named.group_id == "mine"


def test_the_whole_set_named_is_the_plain_group() -> None:
    served = select([catalog], _settings(read_models=["category_stats", "products"]))
    assert served.group_id == "tandem-projector"


def test_totals_without_their_source_are_refused() -> None:
    with pytest.raises(AppError, match="derived from products"):
        select([catalog], _settings(read_models=["category_stats"]))


def test_an_unknown_read_model_lists_the_declared_ones() -> None:
    with pytest.raises(AppError, match="declared: products, category_stats"):
        select([catalog], _settings(read_models=["nope"]))


def test_topics_follow_the_prefix() -> None:
    served = select([catalog], _settings(topic_prefix="t-1."))
    assert served.topics == ["t-1.tandem.product.events"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "projector", *args],
        env={**os.environ, "TANDEM_ENVIRONMENT": "development"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rebuild_without_a_name_lists_the_read_models() -> None:
    listed = _cli("rebuild")
    assert listed.returncode == 0
    assert "read models to rebuild: products" in listed.stderr
    unknown = _cli("rebuild", "nope")
    assert unknown.returncode == 2
    assert "no read model 'nope'" in unknown.stderr
    assert "read models to rebuild: products" in unknown.stderr
    derived = _cli("rebuild", "category_stats")
    assert derived.returncode == 0
    assert "needs no rebuild" in derived.stderr


def test_read_models_flag_refuses_totals_alone() -> None:
    refused = _cli("--read-models", "category_stats", "dlq", "list")
    assert refused.returncode == 2
    assert "derived from products" in refused.stderr

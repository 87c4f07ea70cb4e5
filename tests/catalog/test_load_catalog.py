import json
from io import StringIO

import pytest
from django.core.management import call_command

from catalog.models import Blueprint, Entity, Relation

pytestmark = pytest.mark.django_db


def load(path=None):
    out = StringIO()
    call_command("load_catalog", *([str(path)] if path else []), stdout=out)
    return out.getvalue()


def test_seed_catalog_loads_and_is_idempotent():
    assert "5 blueprints and 9 entities" in load()
    assert Blueprint.objects.count() == 5 and Entity.objects.count() == 9
    assert not Entity.objects.filter(is_stub=True).exists()
    cart = Entity.objects.get(identifier="CartService")
    assert sorted(cart.outgoing.values_list("relation", "target__identifier")) == [
        ("components", "CoreKafkaLibrary"), ("components", "CorePaymentLibrary"), ("resources", "cart-sql-sb"), ("system", "Cart")]
    edges = Relation.objects.count()
    load()
    assert Entity.objects.count() == 9 and Relation.objects.count() == edges


def test_any_order(tmp_path):
    from django.conf import settings

    document = json.loads((settings.BASE_DIR / "catalog/fixtures/seed-catalog.json").read_text())
    document["blueprints"].reverse()
    document["entities"].reverse()
    path = tmp_path / "reversed.json"
    path.write_text(json.dumps(document))
    load(path)
    assert Entity.objects.count() == 9 and not Entity.objects.filter(is_stub=True).exists()
    api = Entity.objects.get(identifier="CartAPI")
    assert api.outgoing.get().target.identifier == "CartService"


def test_bad_file_is_a_clear_error(tmp_path):
    from django.core.management.base import CommandError

    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"blueprints": [{"identifier": "X", "title": "X", "schema": {"properties": {"a": {"type": "nope"}}}}]}))
    with pytest.raises(CommandError, match="schema.properties.a.type"):
        load(path)
    assert not Blueprint.objects.exists()

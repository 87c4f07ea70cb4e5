"""The entity page /catalog/<blueprint>/<identifier>/ (web/action_pages/entity.py): properties, relations both ways
and their graph, deployments and locks of running services, runs, the audit trail, the actions offered — each
only as far as the user may see or do it — in a constant number of queries."""
import re
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions.services.runs import run_request
from catalog.models import Blueprint
from catalog.services.deployments import deployment_record
from catalog.services.entities import UPSERT_MERGE
from catalog.services.permissions import blueprint_permissions_update
from portal.actor import Actor
from tests.factories import ActionFactory, BlueprintFactory, EntityFactory, UserFactory
from tests.support.runs import grant

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system()
SERVICE = {
    "identifier": "Service", "title": "Service",
    "schema": {"properties": {
        "language": {"type": "string", "title": "Language", "enum": ["Go", "Python"], "enumColors": {"Go": "blue"}},
        "readme": {"type": "string", "title": "Readme", "format": "markdown"},
    }},
    "relations": {"domain": {"title": "Domain", "target": "Domain", "many": False},
                  "dependsOn": {"title": "Depends on", "target": "Service", "many": True},
                  "vault": {"title": "Vault", "target": "Secret", "many": False}},
    "mirrorProperties": {"domainTier": {"title": "Domain tier", "path": "domain.tier"}},
    "calculationProperties": {"label": {"title": "Label", "type": "string", "calculation": '.identifier + "!"'}},
}
LOCK_PROPERTIES = {"locked": {"type": "boolean"}, "lockReason": {"type": "string"}, "lockedBy": {"type": "string"},
                   "lockedAt": {"type": "string", "format": "date-time"},
                   "lockedUntil": {"type": "string", "format": "date-time"}}


def blueprint(identifier):
    return Blueprint.objects.get(identifier=identifier)


def write(blueprint_identifier, identifier, *, mode=None, **data):
    options = {"mode": mode} if mode else {}
    return EntityFactory(blueprint=blueprint_identifier, identifier=identifier, **options, **data)


@pytest.fixture
def entity_catalog(db):
    """Services checkout → ledger (dependsOn), checkout → payments (domain), billing → checkout; a Secret blueprint
    nobody but admins reads; dev@ in platform, pay@ in payments."""
    UserFactory(email="dev@example.com", teams=["platform"])
    UserFactory(email="pay@example.com", teams=["payments"])
    UserFactory(email="admin@example.com", admin=True)
    BlueprintFactory(identifier="Domain", title="Domain", schema={"properties": {
        "tier": {"type": "string", "enum": ["gold", "silver"], "enumColors": {"gold": "orange"}}}})
    BlueprintFactory(identifier="Secret", title="Secret", schema={"properties": {}})
    blueprint_permissions_update(actor=SYSTEM, blueprint=blueprint("Secret"), data={"entities": {"read": {"roles": []}}})
    BlueprintFactory(**SERVICE)
    write("Domain", "payments", title="Payments", properties={"tier": "gold"})
    write("Secret", "vault-1")
    write("Service", "ledger", title="Ledger", team=["payments"])
    write("Service", "checkout", title="Checkout", team=["payments"],
          properties={"language": "Go", "readme": "# Checkout\nTakes the money."},
          relations={"domain": "payments", "dependsOn": ["ledger"], "vault": "vault-1"})
    write("Service", "billing", title="Billing", team=["platform"], relations={"dependsOn": ["checkout"]})
    return blueprint("Service")


def signed_in(client, email):
    client.login(username=email, password="pw")
    return client


@pytest.fixture
def signed_in_dev(client, entity_catalog):
    return signed_in(client, "dev@example.com")


def section(html, heading_id):
    """The HTML of one <section> of the page, by its heading id."""
    match = re.search(rf'<section aria-labelledby="{heading_id}">(.*?)</section>', html, re.S)
    assert match, f"no section {heading_id}"
    return match.group(1)


def page(client, url="/catalog/Service/checkout/"):
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def relation_lists(html):
    """(upstream, downstream) HTML of the relation lists under the graph."""
    groups = re.findall(r'<div class="relation-group">(.*?)</div>\s*(?=<div class="relation-group">|</div>)',
                        section(html, "relations-heading"), re.S)
    assert len(groups) == 2
    return groups


def test_header_and_properties_with_mirror_and_calculation_marked(signed_in_dev):
    html = page(signed_in_dev)
    assert "<h1>Checkout</h1>" in html
    assert "<code>checkout</code>" in html and '<a class="badge" href="/teams/payments/">payments</a>' in html  # linked to the team page
    properties = section(html, "properties-heading")
    assert '<span class="badge blue">Go</span>' in properties
    assert '<pre class="value"># Checkout\nTakes the money.</pre>' in properties  # long text shown whole
    assert re.search(r'Domain tier <span class="kind" title="mirror: domain.tier">mirror</span>', properties)
    assert '<span class="badge orange">gold</span>' in properties  # the mirror keeps the Domain enum colour
    assert re.search(r'Label <span class="kind" title="calculation: [^"]+">calculation</span>', properties)
    assert "checkout!" in properties


def test_relations_both_ways_are_linked(signed_in_dev):
    upstream, downstream = relation_lists(page(signed_in_dev))
    assert '<a href="/catalog/Domain/payments/">Payments</a>' in upstream
    assert '<a href="/catalog/Service/ledger/">Ledger</a>' in upstream
    assert '<a href="/catalog/Service/billing/">Billing</a>' in downstream
    assert "Ledger" not in downstream and "Billing" not in upstream


def test_unreadable_targets_are_named_but_not_linked(signed_in_dev):
    relations = section(page(signed_in_dev), "relations-heading")
    assert '<span title="You may not read this entity">vault-1</span>' in relations  # the entity JSON names it
    assert "/catalog/Secret/" not in relations


def test_downstream_from_unreadable_entities_is_not_shown(client, entity_catalog):
    blueprint_permissions_update(actor=SYSTEM, blueprint=entity_catalog, data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    html = page(signed_in(client, "pay@example.com"))  # pay@ reads checkout and ledger, not billing (platform's)
    relations = section(html, "relations-heading")
    assert "Billing" not in relations and "/catalog/Service/billing/" not in relations
    assert "Nothing you may read relates to this entity." in relations


def test_the_relation_graph_links_sources_and_targets(signed_in_dev):
    relations = section(page(signed_in_dev), "relations-heading")
    graph = re.search(r"<svg class=\"relation-graph\".*?</svg>", relations, re.S).group(0)
    links = re.findall(r'<a class="node" href="([^"]+)">', graph)
    assert sorted(links) == ["/catalog/Domain/payments/", "/catalog/Service/billing/", "/catalog/Service/ledger/"]
    assert '<g class="node center">' in graph and ">Checkout</text>" in graph
    assert ">dependsOn</text>" in graph and ">domain</text>" in graph  # edges are labelled
    assert ">+1 more</text>" in graph  # the unreadable vault target is counted, not drawn as a link
    assert '<desc id="relation-graph-desc">Checkout is related to by 1 entity and relates to 3.</desc>' in graph


def test_many_downstream_entities_are_capped_with_a_link_to_the_filtered_table(signed_in_dev):
    for i in range(23):
        write("Service", f"client-{i:02d}", relations={"dependsOn": ["checkout"]})
    relations = section(page(signed_in_dev), "relations-heading")
    downstream = relation_lists(page(signed_in_dev))[1]
    assert len(re.findall(r"<li><a href=", downstream)) == 20
    assert "(24)" in downstream  # billing + 23 clients
    link = unescape(re.search(r'<a href="([^"]+)">All 24 Service entities</a>', downstream).group(1))
    assert link == "/catalog/Service/?f.dependsOn=checkout"
    assert len(re.findall(r'<div class="muted ident">', signed_in_dev.get(link + "&limit=100").content.decode())) == 24
    assert ">+16 more</text>" in relations  # the graph draws 8 of the 24 sources and counts the rest


def test_an_entity_the_user_may_not_read_is_404(client, entity_catalog):
    blueprint_permissions_update(actor=SYSTEM, blueprint=entity_catalog, data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    client = signed_in(client, "dev@example.com")
    assert client.get("/catalog/Service/checkout/").status_code == 404  # payments owns it
    assert client.get("/catalog/Service/billing/").status_code == 200  # platform owns it
    assert client.get("/catalog/Secret/vault-1/").status_code == 404
    assert client.get("/catalog/Service/nope/").status_code == 404
    assert client.get("/catalog/Nope/checkout/").status_code == 404


def test_identifiers_with_slashes_have_pages(signed_in_dev):
    write("Service", "team/a-service", title="Slashed")
    assert "<h1>Slashed</h1>" in page(signed_in_dev, "/catalog/Service/team%2Fa-service/")


# -- actions and runs ---------------------------------------------------------------------------------------


def action_buttons(html):
    return re.findall(r'<a class="button (?:primary|danger)" href="([^"]+)">', section(html, "actions-heading"))


def test_actions_offered_are_the_day2_and_delete_ones_the_user_may_run(client, entity_catalog):
    restart = ActionFactory(identifier="restart", blueprint="Service")
    grant("execute", restart, teams=["platform"])
    retire = ActionFactory(identifier="retire", operation="DELETE", blueprint="Service")
    grant("execute", retire, teams=["platform"])
    create = ActionFactory(identifier="create_service", operation="CREATE", blueprint="Service")
    grant("execute", create, teams=["platform"])
    grant("execute", ActionFactory(identifier="not_granted", blueprint="Service"), teams=["payments"])
    grant("execute", ActionFactory(identifier="other_blueprint", blueprint="Domain"), teams=["platform"])
    grant("execute", ActionFactory(identifier="hidden", blueprint="Service", publish=False), teams=["platform"])
    grant("execute", ActionFactory(identifier="python_only", blueprint="Service",
                                 condition={"combinator": "and", "rules": [
                                     {"property": "language", "operator": "=", "value": "Python"}]}), teams=["platform"])
    grant("execute", ActionFactory(identifier="go_only", blueprint="Service",
                                 condition={"combinator": "and", "rules": [
                                     {"property": "language", "operator": "=", "value": "Go"}]}), teams=["platform"])
    html = page(signed_in(client, "dev@example.com"))
    assert sorted(unescape(b) for b in action_buttons(html)) == [
        "/actions/go_only/run?entity=checkout", "/actions/restart/run?entity=checkout", "/actions/retire/run?entity=checkout"]
    assert '<a class="button danger" href="/actions/retire/run?entity=checkout">Retire</a>' in html


def test_owned_by_team_actions_are_offered_on_the_teams_entities_only(client, entity_catalog):
    action = ActionFactory(identifier="scale", blueprint="Service", permission_settings={"ownedByTeam": {"execute": True}})
    assert action.pk
    client = signed_in(client, "pay@example.com")
    assert action_buttons(page(client)) == ["/actions/scale/run?entity=checkout"]  # payments owns checkout
    assert action_buttons(page(client, "/catalog/Service/billing/")) == []  # platform owns billing
    assert "There are no actions you may run on this entity." in page(client, "/catalog/Service/billing/")


def test_runs_of_the_entity_are_listed_newest_first(signed_in_dev, entity_catalog):
    from django.contrib.auth import get_user_model

    action = ActionFactory(identifier="restart", blueprint="Service")
    grant("execute", action, teams=["platform", "payments"])
    pay = get_user_model().objects.get(email="pay@example.com")
    first = run_request(actor=Actor(user=pay, origin="API"), action=action, properties={}, entity_identifier="checkout")
    second = run_request(actor=Actor(user=pay, origin="API"), action=action, properties={}, entity_identifier="checkout")
    run_request(actor=Actor(user=pay, origin="API"), action=action, properties={}, entity_identifier="ledger")
    runs = section(page(signed_in_dev), "runs-heading")
    assert re.findall(r'href="/runs/([^/]+)/"', runs) == [second.id, first.id]
    assert '<span class="badge status-IN_PROGRESS">' in runs and "pay@example.com" in runs


def test_runs_the_user_may_not_see_are_not_listed(client, entity_catalog):
    from django.contrib.auth import get_user_model

    action = ActionFactory(identifier="restart", blueprint="Service")
    grant("execute", action, teams=["platform"])
    dev = get_user_model().objects.get(email="dev@example.com")
    run_request(actor=Actor(user=dev, origin="API"), action=action, properties={}, entity_identifier="billing")
    blueprint_permissions_update(actor=SYSTEM, blueprint=entity_catalog, data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    # pay@ cannot read billing, so neither its page nor its runs; on checkout (theirs) there is no run.
    client = signed_in(client, "pay@example.com")
    assert client.get("/catalog/Service/billing/").status_code == 404
    assert "No runs on this entity that you may see." in section(page(client), "runs-heading")


# -- audit trail --------------------------------------------------------------------------------------------


def test_audit_trail_shows_the_entitys_changes_newest_first(signed_in_dev):
    write("Service", "checkout", mode=UPSERT_MERGE, properties={"language": "Python"})
    audit = section(page(signed_in_dev), "audit-heading")
    verbs = re.findall(r"<td>(catalog\.entity\.\w+)", audit)
    assert verbs == ["catalog.entity.updated", "catalog.entity.created"]
    assert "<code>language</code>" in audit
    assert 'href="/v1/audit-log?entity=checkout&amp;blueprint=Service"' in audit


# -- running services: deployments and locks ----------------------------------------------------------------


@pytest.fixture
def deployments(db, entity_catalog):
    BlueprintFactory(identifier="Component", title="Component", schema={"properties": {}})
    BlueprintFactory(identifier="environment", title="Environment", schema={"properties": {
        "type": {"type": "string", "enum": ["production", "staging"]}, **LOCK_PROPERTIES}})
    BlueprintFactory(
        identifier="runningService", title="Running service",
        schema={"properties": {"version": {"type": "string"}, "commitSha": {"type": "string"},
                               "jobUrl": {"type": "string", "format": "url"}, "deployedBy": {"type": "string"},
                               "deployedAt": {"type": "string", "format": "date-time"}, **LOCK_PROPERTIES}},
        relations={"service": {"target": "Component", "required": True, "many": False},
                   "environment": {"target": "environment", "required": True, "many": False}})
    BlueprintFactory(
        identifier="deployment", title="Deployment",
        schema={"properties": {key: {"type": "string"} for key in (
            "version", "commitSha", "commitTime", "jobUrl", "status", "deployedBy", "startedAt", "finishedAt")}},
        relations={"runningService": {"target": "runningService", "required": True, "many": False}})
    write("Component", "CartService", title="Cart service")
    write("environment", "production", title="Production", properties={"type": "production"})


def deploy(version, status="success", service="CartService"):
    return deployment_record(actor=SYSTEM, data={"service": service, "environment": "production", "version": version,
                                                 "commitSha": f"sha-{version}", "status": status,
                                                 "jobUrl": f"https://ci.example.com/{version}"})


def test_a_running_service_shows_its_deployments_newest_first_and_its_locks(signed_in_dev, deployments):
    for version in ("1.0", "1.1", "1.2"):
        deploy(version, status="failure" if version == "1.1" else "success")
    write("runningService", "CartService-production", mode=UPSERT_MERGE, properties={
        "locked": True, "lockReason": "release freeze", "lockedBy": "sre@example.com", "lockedAt": "2025-01-01T00:00:00Z"})
    html = page(signed_in_dev, "/catalog/runningService/CartService-production/")
    rows = section(html, "deployments-heading")
    assert re.findall(r"<td>(1\.\d)</td>", rows) == ["1.2", "1.1", "1.0"]
    assert '<span class="badge red">failure</span>' in rows
    assert '<a href="https://ci.example.com/1.2" rel="noopener noreferrer">CI job</a>' in rows
    assert unescape(re.search(r'<a href="([^"]+)">All deployments', rows).group(1)) == (
        "/catalog/deployment/?f.runningService=CartService-production&sort=-%24createdAt")
    lock = section(html, "lock-heading")
    assert '<strong class="locked">Locked</strong>: release freeze' in lock and "By sre@example.com" in lock
    assert 'Environment <a href="/catalog/environment/production/">Production</a>' in lock
    assert '<span class="badge red">Locked</span>' in html  # in the header too, with its text


def test_an_environment_lock_is_shown_on_its_running_services(signed_in_dev, deployments):
    deploy("1.0")
    write("environment", "production", mode=UPSERT_MERGE, properties={"locked": True, "lockReason": "incident 42"})
    lock = section(page(signed_in_dev, "/catalog/runningService/CartService-production/"), "lock-heading")
    assert "<strong>Unlocked</strong>: deployments may proceed once the environment is unlocked." in lock
    assert '<strong class="locked">Locked</strong>: incident 42' in lock
    env_page = page(signed_in_dev, "/catalog/environment/production/")
    assert '<strong class="locked">Locked</strong>: incident 42' in section(env_page, "lock-heading")
    assert "deployments-heading" not in env_page  # only running services list deployments


def test_deployments_are_hidden_from_users_who_may_not_read_them(signed_in_dev, deployments):
    deploy("1.0")
    blueprint_permissions_update(actor=SYSTEM, blueprint=blueprint("deployment"), data={"entities": {"read": {"roles": []}}})
    deployments_section = section(page(signed_in_dev, "/catalog/runningService/CartService-production/"), "deployments-heading")
    assert "No deployments recorded yet." in deployments_section


# -- query counts -------------------------------------------------------------------------------------------


def queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def test_query_count_does_not_grow_with_relations_runs_audit_events_or_deployments(signed_in_dev, deployments):
    from django.contrib.auth import get_user_model

    action = ActionFactory(identifier="restart", blueprint="Service")
    grant("execute", action, teams=["platform"])
    dev_user = get_user_model().objects.get(email="dev@example.com")
    grant("execute", ActionFactory(identifier="go_only", blueprint="Service", condition={
        "combinator": "and", "rules": [{"property": "language", "operator": "=", "value": "Go"}]}), teams=["platform"])
    deploy("0.1")
    run_request(actor=Actor(user=dev_user, origin="API"), action=action, properties={}, entity_identifier="checkout")
    service_url, running_url = "/catalog/Service/checkout/", "/catalog/runningService/CartService-production/"
    baseline = queries(signed_in_dev, service_url), queries(signed_in_dev, running_url)

    for i in range(15):
        write("Service", f"dep-{i}")
        write("Service", f"client-{i}", relations={"dependsOn": ["checkout"]})
        run_request(actor=Actor(user=dev_user, origin="API"), action=action, properties={}, entity_identifier="checkout")
        deploy(f"1.{i}")
        write("Service", "checkout", mode=UPSERT_MERGE, properties={"readme": f"version {i}"})
        write("Service", "checkout", mode=UPSERT_MERGE, properties={"readme": f"version {i}."})
    write("Service", "checkout", mode=UPSERT_MERGE, relations={"dependsOn": [f"dep-{i}" for i in range(15)]})
    html = page(signed_in_dev, service_url)
    assert len(re.findall(r'href="/runs/', section(html, "runs-heading"))) == 10  # capped
    assert len(re.findall(r"<li><a href=", relation_lists(html)[1])) == 16
    assert len(re.findall(r"<td>catalog\.entity\.", section(html, "audit-heading"))) == 20  # capped
    assert len(re.findall(r"<td>1\.\d+</td>", section(page(signed_in_dev, running_url), "deployments-heading"))) == 10  # capped
    assert (queries(signed_in_dev, service_url), queries(signed_in_dev, running_url)) == baseline

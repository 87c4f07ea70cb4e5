"""The synthetic catalog: six blueprints, three levels of relations, deterministic entities.

Every entity is a pure function of (blueprint, index, plan), so the loader, the single-upsert
measurement and the query parameters agree without reading the database back, and a kept
database (`--keep`) can be queried with the same parameters.

    Domain  <-domain-  System  <-system-  Service  <-service-  Deployment
                          \\owner            \\owner  <-service-  Resource -owner-> Squad
                           -> Squad           -> Squad

Shares of the total (at 100,000: 400 domains, 400 squads, 2,000 systems, 8,000 services,
60,000 deployments, 29,200 resources): one domain has 5 systems, 20 services and about 150
deployments below it, so `relatedTo` a domain downstream 3 hops answers ~150 deployments at
any catalog size.
"""
import random
from datetime import datetime, timedelta, timezone

# Load order: every relation target is loaded before its sources.
SHARES = [
    ("Domain", 0.004),
    ("Squad", 0.004),
    ("System", 0.020),
    ("Service", 0.080),
    ("Deployment", 0.600),
    ("Resource", 0.292),
]
PREFIX = {"Domain": "dom", "Squad": "squad", "System": "sys", "Service": "svc", "Deployment": "dep", "Resource": "res"}

# Deployment dates fall in the year before this fixed instant, so a kept database still matches.
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
DATE_SPAN_DAYS = 365

ADJECTIVES = ["Amber", "Brisk", "Cobalt", "Dusty", "Eager", "Fuzzy", "Golden", "Hidden", "Ivory", "Jolly",
              "Keen", "Lunar", "Misty", "Noble", "Olive", "Proud", "Quiet", "Rapid", "Silent", "Tidal",
              "Umber", "Vivid", "Wild", "Young", "Zesty"]
NOUNS = ["Falcon", "Badger", "Comet", "Delta", "Ember", "Fjord", "Glacier", "Harbor", "Island", "Jaguar",
         "Kestrel", "Lagoon", "Meadow", "Nebula", "Orchid", "Pepper", "Quartz", "Raven", "Summit", "Tundra",
         "Unicorn", "Valley", "Walrus", "Yonder", "Zephyr", "Anchor", "Beacon", "Canyon", "Dune", "Echo",
         "Forest", "Grove", "Horizon", "Iris", "Juniper", "Koala", "Lantern", "Marble", "Nectar", "Oasis"]
SUFFIXES = ["API", "Worker", "Gateway", "Frontend", "Scheduler", "Indexer", "Proxy", "Store"]

# Skewed on purpose: equality on a rare value is the case an index has to carry.
DEPLOY_STATUS = [("success", 80), ("failed", 10), ("running", 5), ("rolled_back", 4), ("cancelled", 1)]
ENVIRONMENTS = ["production", "staging", "development"]
LANGUAGES = ["Python", "Go", "Java", "TypeScript", "Rust", "Kotlin"]
TIERS = ["tier-1", "tier-2", "tier-3"]
RESOURCE_KINDS = ["database", "queue", "bucket", "cache", "cluster"]
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-southeast-1"]


def blueprints():
    """Blueprint JSON in load order (the API's POST /v1/blueprints shape)."""
    return [
        {"identifier": "Domain", "title": "Domain", "icon": "Domain",
         "schema": {"properties": {
             "tier": {"type": "string", "enum": TIERS},
             "description": {"type": "string"}}, "required": []},
         "relations": {}},
        {"identifier": "Squad", "title": "Squad", "icon": "Team",
         "schema": {"properties": {
             "slackChannel": {"type": "string"},
             "size": {"type": "number", "minimum": 1}}, "required": []},
         "relations": {}},
        {"identifier": "System", "title": "System", "icon": "System",
         "schema": {"properties": {
             "lifecycle": {"type": "string", "enum": ["production", "experimental", "deprecated"]}}, "required": []},
         "relations": {"domain": {"target": "Domain", "required": True, "many": False, "title": "Domain"},
                       "owner": {"target": "Squad", "required": False, "many": False, "title": "Owner"}}},
        {"identifier": "Service", "title": "Service", "icon": "Service",
         "schema": {"properties": {
             "language": {"type": "string", "enum": LANGUAGES},
             "tier": {"type": "string", "enum": TIERS},
             "repo": {"type": "string", "format": "url"},
             "createdOn": {"type": "string", "format": "date-time"}}, "required": ["language"]},
         "relations": {"system": {"target": "System", "required": True, "many": False, "title": "System"},
                       "owner": {"target": "Squad", "required": False, "many": False, "title": "Owner"}}},
        {"identifier": "Deployment", "title": "Deployment", "icon": "Deployment",
         "schema": {"properties": {
             "status": {"type": "string", "enum": [s for s, _ in DEPLOY_STATUS]},
             "environment": {"type": "string", "enum": ENVIRONMENTS},
             "version": {"type": "string"},
             "deployedAt": {"type": "string", "format": "date-time", "indexed": True},  # the sorted table page's
             "durationSeconds": {"type": "number", "minimum": 0}}, "required": ["status", "deployedAt"]},
         "relations": {"service": {"target": "Service", "required": True, "many": False, "title": "Service"}}},
        {"identifier": "Resource", "title": "Resource", "icon": "Cloud",
         "schema": {"properties": {
             "kind": {"type": "string", "enum": RESOURCE_KINDS},
             "region": {"type": "string", "enum": REGIONS},
             "costPerMonth": {"type": "number", "minimum": 0},
             "createdOn": {"type": "string", "format": "date-time"}}, "required": ["kind"]},
         "relations": {"service": {"target": "Service", "required": False, "many": False, "title": "Service"},
                       "owner": {"target": "Squad", "required": False, "many": False, "title": "Owner"}}},
    ]


def plan(total):
    """{blueprint: count}; every blueprint gets at least one entity and the counts add up to `total`."""
    counts = {bp: max(1, round(total * share)) for bp, share in SHARES}
    counts["Deployment"] += total - sum(counts.values())
    if counts["Deployment"] < 1:
        raise ValueError(f"--entities {total} is too small for {len(SHARES)} blueprints")
    return counts


def identifier(blueprint, index):
    return f"{PREFIX[blueprint]}-{index:07d}"


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _service_name(index):
    rng = random.Random(f"svc-name:{index}")
    return f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(SUFFIXES)}"


def _weighted(rng, pairs):
    return rng.choices([v for v, _ in pairs], weights=[w for _, w in pairs])[0]


def entity(blueprint, index, counts, *, version_bump=0):
    """The entity JSON of `blueprint` number `index` (0-based)."""
    rng = random.Random(f"{blueprint}:{index}")
    ident = identifier(blueprint, index)
    if blueprint == "Domain":
        return {"identifier": ident, "title": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} domain {index}",
                "properties": {"tier": rng.choice(TIERS), "description": f"Business domain number {index}."}}
    if blueprint == "Squad":
        return {"identifier": ident, "title": f"Squad {rng.choice(NOUNS)} {index}",
                "properties": {"slackChannel": f"#squad-{index}", "size": rng.randint(3, 12)}}
    if blueprint == "System":
        return {"identifier": ident, "title": f"{rng.choice(NOUNS)} system {index}",
                "properties": {"lifecycle": rng.choice(["production", "production", "experimental", "deprecated"])},
                "relations": {"domain": identifier("Domain", index % counts["Domain"]),
                              "owner": identifier("Squad", rng.randrange(counts["Squad"]))}}
    if blueprint == "Service":
        created = EPOCH - timedelta(days=rng.uniform(365, 5 * 365))
        return {"identifier": ident, "title": _service_name(index),
                "properties": {"language": rng.choice(LANGUAGES), "tier": rng.choice(TIERS),
                               "repo": f"https://git.example.com/org/{ident}", "createdOn": iso(created)},
                "relations": {"system": identifier("System", index % counts["System"]),
                              "owner": identifier("Squad", rng.randrange(counts["Squad"]))}}
    if blueprint == "Deployment":
        service = index % counts["Service"]
        environment = rng.choice(ENVIRONMENTS)
        version = f"{rng.randint(1, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 20) + version_bump}"
        deployed = EPOCH - timedelta(seconds=rng.uniform(0, DATE_SPAN_DAYS * 86400))
        return {"identifier": ident, "title": f"{_service_name(service)} {version} to {environment}",
                "properties": {"status": _weighted(rng, DEPLOY_STATUS), "environment": environment, "version": version,
                               "deployedAt": iso(deployed), "durationSeconds": rng.randint(20, 1800)},
                "relations": {"service": identifier("Service", service)}}
    if blueprint == "Resource":
        kind = rng.choice(RESOURCE_KINDS)
        created = EPOCH - timedelta(days=rng.uniform(0, 3 * 365))
        return {"identifier": ident, "title": f"{rng.choice(ADJECTIVES)} {kind} {index}",
                "properties": {"kind": kind, "region": rng.choice(REGIONS), "costPerMonth": rng.randint(5, 5000),
                               "createdOn": iso(created)},
                "relations": {"service": identifier("Service", rng.randrange(counts["Service"])),
                              "owner": identifier("Squad", rng.randrange(counts["Squad"]))}}
    raise KeyError(blueprint)

"""Issue 18's Backstage import benchmark: N generated descriptors read through a registered file location, from
the registration to every entity searchable through the API.

The descriptors are written as Backstage organizations keep them: one catalog-info.yaml per repository (a
Component, its API and a Resource; a System per 20 repositories; a Group per 10), under one root whose Location
lists them with a glob. Timed: POST /v1/backstage/locations, POST .../refresh?install_blueprints=true (the
refresh answers once everything is written), then searches until the last descriptor's entity is found and every
blueprint's count is right. Backstage's own catalog takes about 118 s for 10,000 entities on these machines."""
import shutil
import time
from pathlib import Path

BACKSTAGE_SECONDS_PER_10K = 118.0
PER_REPOSITORY = 3  # Component, API, Resource
REPOSITORIES_PER_SYSTEM, REPOSITORIES_PER_GROUP = 20, 10


def _repository(i):
    group, system = f"team-{i // REPOSITORIES_PER_GROUP}", f"system-{i // REPOSITORIES_PER_SYSTEM}"
    return f"""apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: service-{i}
  tags: [bench, python]
  annotations: {{github.com/project-slug: "bench/service-{i}"}}
spec: {{type: service, lifecycle: production, owner: {group}, system: {system}, providesApis: [api-{i}],
        consumesApis: [api-{max(i - 1, 0)}], dependsOn: ["resource:db-{i}"]}}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: {{name: api-{i}}}
spec: {{type: openapi, lifecycle: production, owner: {group}, system: {system}, definition: "openapi: 3.0.0"}}
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata: {{name: db-{i}}}
spec: {{type: database, owner: {group}, system: {system}}}
"""


def _shared(repositories):
    documents = []
    for g in range((repositories + REPOSITORIES_PER_GROUP - 1) // REPOSITORIES_PER_GROUP):
        documents.append(f"apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {{name: team-{g}}}\n"
                         f"spec: {{type: team, children: []}}\n")
    for s in range((repositories + REPOSITORIES_PER_SYSTEM - 1) // REPOSITORIES_PER_SYSTEM):
        documents.append(f"apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata: {{name: system-{s}}}\n"
                         f"spec: {{owner: team-{s * 2}}}\n")
    return "---\n".join(documents)


def generate(directory: Path, descriptors: int):
    """Write about `descriptors` descriptors under `directory`; returns (root file, {blueprint: count})."""
    shutil.rmtree(directory, ignore_errors=True)
    repositories = max(1, descriptors // PER_REPOSITORY)
    for i in range(repositories):
        (directory / f"repo-{i}").mkdir(parents=True)
        (directory / f"repo-{i}" / "catalog-info.yaml").write_text(_repository(i))
    (directory / "org.yaml").write_text(_shared(repositories))
    root = directory / "all.yaml"
    root.write_text("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: bench}\n"
                    "spec:\n  targets: [./org.yaml, ./repo-*/catalog-info.yaml]\n")
    counts = {"backstage_component": repositories, "backstage_api": repositories, "backstage_resource": repositories,
              "backstage_group": (repositories + REPOSITORIES_PER_GROUP - 1) // REPOSITORIES_PER_GROUP,
              "backstage_system": (repositories + REPOSITORIES_PER_SYSTEM - 1) // REPOSITORIES_PER_SYSTEM}
    return root, counts


def measure(client, directory: Path, descriptors: int, *, log, poll_timeout=600.0):
    root, counts = generate(directory, descriptors)
    total = sum(counts.values())
    log(f"  {total:,} descriptors in {counts['backstage_component']:,} repositories written under {directory}")
    client.request("DELETE", "/v1/backstage/locations/bench")  # a kept database's earlier run
    started = time.perf_counter()
    client.json("POST", "/v1/backstage/locations", {"identifier": "bench", "type": "file", "target": str(root)},
                expect=(201,))
    location = client.json("POST", "/v1/backstage/locations/bench/refresh?install_blueprints=true")["location"]
    refreshed = time.perf_counter() - started
    last = f"service-{counts['backstage_component'] - 1}"
    query = {"combinator": "and", "rules": [{"property": "$identifier", "operator": "=", "value": last},
                                            {"property": "$blueprint", "operator": "=", "value": "backstage_component"}]}
    deadline = time.perf_counter() + poll_timeout
    while True:
        found = client.json("POST", "/v1/entities/search", query)["entities"]
        counted = {bp: client.json("GET", f"/v1/blueprints/{bp}/entities-count")["count"] for bp in counts}
        if (found and counted == counts) or time.perf_counter() > deadline:
            break
        time.sleep(0.2)
    searchable = time.perf_counter() - started
    return {"descriptors": total, "entities": location["entityCount"], "errors": len(location["errors"]),
            "first_errors": location["errors"][:3], "files": location["filesRead"],
            "refresh_s": round(refreshed, 2), "searchable_s": round(searchable, 2),
            "server_refresh_s": location["lastRefreshSeconds"], "all_searchable": bool(found) and counted == counts,
            "entities_per_s": round(total / searchable, 1) if searchable else None,
            "backstage_s_same_size": round(BACKSTAGE_SECONDS_PER_10K * total / 10_000, 1)}


def report_lines(result):
    verdict = "all searchable" if result["all_searchable"] else "NOT all searchable before the timeout"
    return [f"Backstage import through a file location: {result['descriptors']:,} descriptors in {result['files']:,} files "
            f"-> {result['entities']:,} entities, {result['errors']} errors; refresh answered in {result['refresh_s']} s "
            f"(server {result['server_refresh_s']} s), {verdict} after {result['searchable_s']} s "
            f"({result['entities_per_s']} entities/s); Backstage's catalog: about {result['backstage_s_same_size']} s "
            "for as many entities"]

"""The software catalog: teams, blueprints, entities, their relations and timers."""
from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models.functions import Upper

from catalog.choices import BackstageLocationType


class Team(models.Model):
    """A team is an auth Group, so object permissions granted to a team are guardian group permissions."""

    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="team")
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Blueprint(models.Model):
    identifier = models.CharField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    icon = models.CharField(max_length=100, blank=True, default="")
    description = models.TextField(blank=True, default="")
    schema = models.JSONField(default=dict)
    relations = models.JSONField(default=dict, blank=True)
    mirror_properties = models.JSONField(default=dict, blank=True)
    calculation_properties = models.JSONField(default=dict, blank=True)
    aggregation_properties = models.JSONField(default=dict, blank=True)
    formula_properties = models.JSONField(default=dict, blank=True)
    ownership = models.JSONField(null=True, blank=True)
    changelog_destination = models.JSONField(null=True, blank=True)
    # The aggregation properties whose values depend on this blueprint's entities: [[blueprint, key], ...] of the
    # blueprints whose aggregations target it or walk through it (catalog/selectors/aggregations.py); kept by the
    # blueprint services, read by every entity write so that one of a blueprint nothing aggregates pays nothing.
    aggregated_by = models.JSONField(default=list, blank=True)
    # Scorecards of the blueprint's entities (catalog/scorecards.py): a list in Port's shape, kept with the definition.
    scorecards = models.JSONField(default=list, blank=True)
    # Blueprint-level permission settings guardian cannot hold (ownedByTeam flags per verb).
    permission_settings = models.JSONField(default=dict, blank=True)
    # Bumped on every definition change; validators are cached per (identifier, version).
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.CharField(max_length=254, blank=True, default="")
    updated_by = models.CharField(max_length=254, blank=True, default="")

    class Meta:
        ordering = ["identifier"]
        permissions = [
            ("moderate_blueprint", "Moderate the blueprint and all its entities"),
            ("read_entities", "Read the blueprint's entities"),
            ("register_entities", "Create entities of the blueprint"),
            ("update_entities", "Update entities of the blueprint"),
            ("unregister_entities", "Delete entities of the blueprint"),
        ]

    def __str__(self):
        return self.identifier


class Entity(models.Model):
    blueprint = models.ForeignKey(Blueprint, on_delete=models.PROTECT, related_name="entities")
    identifier = models.CharField(max_length=1000)
    title = models.CharField(max_length=1000, blank=True, default="")
    icon = models.CharField(max_length=100, blank=True, default="")
    properties = models.JSONField(default=dict, blank=True)
    teams = models.ManyToManyField(Team, blank=True, related_name="entities")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.CharField(max_length=254, blank=True, default="")
    updated_by = models.CharField(max_length=254, blank=True, default="")
    # The run that created/last changed the entity (runs arrive with the actions app).
    run_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # Aggregation property values ({key: number | null}), kept current by the entity and blueprint writers.
    aggregates = models.JSONField(null=True, blank=True)
    # True for targets created by create_missing_related_entities.
    is_stub = models.BooleanField(default=False)
    # Who last wrote it: an Ocean integration's User-Agent (port-ocean/<type>/<version>/<id>/exporter), else ''.
    # An integration deletes only entities whose datasource is its own (datasource-entities, `$datasource`).
    datasource = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        verbose_name_plural = "entities"
        ordering = ["blueprint_id", "identifier"]
        constraints = [
            models.UniqueConstraint(fields=["blueprint", "identifier"], name="entity_unique_identifier_per_blueprint"),
        ]
        indexes = [
            GinIndex(OpClass("properties", name="jsonb_path_ops"), name="entity_properties_gin"),
            GinIndex(OpClass(Upper("title"), name="gin_trgm_ops"), name="entity_title_trgm"),
            GinIndex(OpClass(Upper("identifier"), name="gin_trgm_ops"), name="entity_identifier_trgm"),
            models.Index(fields=["blueprint", "created_at"], name="entity_bp_created"),
            models.Index(fields=["blueprint", "updated_at"], name="entity_bp_updated"),
            models.Index(fields=["blueprint", "id"], name="entity_bp_id"),
            # Prefix matches (LIKE 'port-ocean/<type>/%') whatever the database's collation.
            models.Index(OpClass("datasource", name="varchar_pattern_ops"), "updated_at", name="entity_datasource"),
        ]

    def __str__(self):
        return f"{self.blueprint_id}:{self.identifier}"


class Relation(models.Model):
    """One edge `source --relation--> target`; the source of truth for relation queries."""

    source = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="outgoing")
    relation = models.CharField(max_length=100)
    target = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="incoming")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "relation", "target"], name="relation_unique_edge"),
        ]
        indexes = [
            models.Index(fields=["target", "relation"], name="relation_target"),
        ]


class ScorecardResult(models.Model):
    """An entity's standing on one of its blueprint's scorecards: rewritten when the entity, what its rules read, or
    the scorecard changes (catalog/services/scorecards.py). Absent when the scorecard's filter leaves the entity out."""

    blueprint = models.ForeignKey(Blueprint, on_delete=models.CASCADE, related_name="+")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="scorecard_results")
    scorecard = models.CharField(max_length=100)  # the scorecard's identifier in the blueprint's `scorecards`
    level = models.CharField(max_length=200)
    passed = models.JSONField(default=dict)  # {rule identifier: true | false}
    evaluated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entity", "scorecard"], name="scorecard_result_unique")]
        indexes = [models.Index(fields=["blueprint", "scorecard", "level"], name="scorecard_result_level")]


class ScorecardSnapshot(models.Model):
    """How many entities stood at each level of a scorecard on a day, over all of them (team "") and per owning
    team: the history a maturity trend is drawn from. Beat rewrites today's rows every hour; earlier days stay."""

    day = models.DateField()
    blueprint = models.ForeignKey(Blueprint, on_delete=models.CASCADE, related_name="+")
    scorecard = models.CharField(max_length=100)
    team = models.CharField(max_length=100, blank=True, default="")  # "" for every entity, else a team's name
    counts = models.JSONField(default=dict)  # {level title: entities}
    taken_at = models.DateTimeField()

    class Meta:
        ordering = ["day", "team"]
        constraints = [models.UniqueConstraint(fields=["blueprint", "scorecard", "team", "day"],
                                               name="scorecard_snapshot_unique")]


class Initiative(models.Model):
    """A named goal over one of a blueprint's scorecards, with a due date: every entity it covers (the scorecard's,
    narrowed by `filter`) reaching `level` and passing `rules` (catalog/initiatives.py). Progress is read from the
    stored standings (catalog/selectors/initiatives.py), so it is as current as they are."""

    identifier = models.CharField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    blueprint = models.ForeignKey(Blueprint, on_delete=models.CASCADE, related_name="initiatives")
    scorecard = models.CharField(max_length=100)  # the identifier of one of the blueprint's scorecards
    level = models.CharField(max_length=200, blank=True, default="")  # "" when the goal is only `rules`
    rules = models.JSONField(default=list, blank=True)  # [rule identifier] of the scorecard
    filter = models.JSONField(null=True, blank=True)  # {combinator, conditions}: which entities it covers
    due_date = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.CharField(max_length=254, blank=True, default="")
    updated_by = models.CharField(max_length=254, blank=True, default="")

    class Meta:
        ordering = ["due_date", "identifier"]

    def __str__(self):
        return self.title


class Timer(models.Model):
    """One row per timer-format property value; the sweeper scans `expires_at`."""

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="timers")
    property = models.CharField(max_length=100)
    expires_at = models.DateTimeField(db_index=True)
    fired_at = models.DateTimeField(null=True, blank=True)
    # TTL bookkeeping (actions): the owner was warned of this expiry; the teardown failed (entity kept, marked).
    warned_at = models.DateTimeField(null=True, blank=True)
    termination_failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entity", "property"], name="timer_unique_entity_property"),
        ]


class SavedView(models.Model):
    """A named blueprint table query (filters, search, sort) with its columns: the owner's, or shared with
    everyone who can read the blueprint."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    blueprint = models.ForeignKey(Blueprint, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=100)
    query = models.TextField(blank=True, default="")  # the table page's query string, without paging
    columns = models.JSONField(default=list)  # column keys, in order
    shared = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "blueprint", "name"], name="saved_view_unique_owner_blueprint_name"),
        ]

    def __str__(self):
        return f"{self.name} ({self.blueprint.identifier})"


class Integration(models.Model):
    """An Ocean integration (Port's `integration` resource): what it is, the mapping config it reads, and
    where its last resync stands. Written by catalog.services.integrations only."""

    identifier = models.CharField(max_length=200, unique=True)  # Ocean's installationId
    installation_app_type = models.CharField(max_length=100, blank=True, default="")
    version = models.CharField(max_length=100, blank=True, default="")
    config = models.JSONField(default=dict, blank=True)
    changelog_destination = models.JSONField(null=True, blank=True)
    # Ocean's other integration keys (processingMode, actionsProcessingEnabled, arePortResourcesInitialized,
    # spec, ...): kept and returned as sent, since Ocean compares them on start.
    attributes = models.JSONField(default=dict, blank=True)
    resync_status = models.CharField(max_length=16, blank=True, default="")
    last_resync_start = models.DateTimeField(null=True, blank=True)
    last_resync_end = models.DateTimeField(null=True, blank=True)
    next_resync = models.DateTimeField(null=True, blank=True)
    resync_interval_minutes = models.PositiveIntegerField(null=True, blank=True)
    resync_state_updated_at = models.DateTimeField(null=True, blank=True)
    # Set by "Resync now"; served to POLLING integrations through GET .../resync-request.
    resync_requested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.CharField(max_length=254, blank=True, default="")
    updated_by = models.CharField(max_length=254, blank=True, default="")

    class Meta:
        ordering = ["identifier"]

    def __str__(self):
        return self.identifier


class IntegrationResync(models.Model):
    """One resync of an integration, opened by its `running` resync-state and closed by the next final one;
    `metrics` holds what Ocean reported per kind during it."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="resyncs")
    status = models.CharField(max_length=16)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["integration", "-started_at"], name="integration_resync_recent")]


class IntegrationLog(models.Model):
    """A log line an integration sent to its log ingest URL; only the most recent lines are kept."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="logs")
    at = models.DateTimeField()
    level = models.CharField(max_length=16, blank=True, default="")
    message = models.TextField()
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["integration", "-id"], name="integration_log_recent")]


class IntegrationKindExample(models.Model):
    """The raw objects an integration last saw for a kind, to write a mapping against real data."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="kind_examples")
    kind = models.CharField(max_length=200)
    examples = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind"]
        constraints = [models.UniqueConstraint(fields=["integration", "kind"], name="integration_kind_example_unique")]


class BackstageLocation(models.Model):
    """Where Backstage descriptors are read from (catalog/backstage/reader.py): a file path, a URL, or a GitHub
    organization whose repositories each hold one at `catalog_path`. What it reads is written with `datasource`,
    so a refresh removes exactly the entities its descriptors no longer define. Written by
    catalog.services.backstage only."""

    identifier = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=8, choices=BackstageLocationType.choices)
    target = models.CharField(max_length=1000)
    catalog_path = models.CharField(max_length=300, blank=True, default="catalog-info.yaml")
    refresh_interval_minutes = models.PositiveIntegerField(default=30)
    last_refresh_at = models.DateTimeField(null=True, blank=True)
    last_refresh_seconds = models.FloatField(null=True, blank=True)
    files_read = models.PositiveIntegerField(default=0)
    entity_count = models.PositiveIntegerField(default=0)
    # [{file, document, field, message}] of the last refresh: descriptors that did not validate, files not read.
    errors = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.CharField(max_length=254, blank=True, default="")
    updated_by = models.CharField(max_length=254, blank=True, default="")

    class Meta:
        ordering = ["identifier"]

    def __str__(self):
        return self.identifier

    @property
    def datasource(self):
        return f"backstage-location/{self.identifier}"

from django.apps import AppConfig


class ActionsConfig(AppConfig):
    name = "actions"

    def ready(self):
        # The catalog never imports actions: it calls the run_id check and announces entity changes
        # through portal.events, and actions plugs in here.
        from actions.services.actions import blueprint_delete_check
        from actions.services.runs import entity_changes_link_runs, run_reference_check
        from portal import events

        events.register_check(events.RUN_REFERENCE, run_reference_check)
        events.register_check(events.BLUEPRINT_DELETE, blueprint_delete_check)
        events.subscribe(events.ENTITY_CHANGED, entity_changes_link_runs)

        from actions.notifications import run_changed_notify

        events.subscribe(events.RUN_CHANGED, run_changed_notify)

        # Automations, TTL start and teardown settlement (actions/services/automations.py, ttl.py). Every subscriber
        # runs in the writer's transaction (portal/events.py): linking a run's result and starting its TTL are part of
        # the change; notifications, automations and teardowns queue their Celery work there as outbox rows.
        from actions.services.automations import entity_changes_queue_automations, run_changes_queue_automations
        from actions.services.ttl import run_changes_settle_termination, run_changes_start_ttl

        events.subscribe(events.ENTITY_CHANGED, entity_changes_queue_automations)
        events.subscribe(events.RUN_CHANGED, run_changes_start_ttl)
        events.subscribe(events.RUN_CHANGED, run_changes_settle_termination)
        events.subscribe(events.RUN_CHANGED, run_changes_queue_automations)

        # The change log (actions/changelog.py): changes of blueprints that publish them are written, in the change's
        # transaction, as messages drained to Kafka in order (portal/changelog.py).
        from actions.changelog import entity_changes_log, run_changes_log

        events.subscribe(events.ENTITY_CHANGED, entity_changes_log)
        events.subscribe(events.RUN_CHANGED, run_changes_log)

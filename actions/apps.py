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

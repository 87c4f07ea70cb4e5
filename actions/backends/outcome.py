"""How a backend loads its run and reports on it: every backend goes through these (system actor), so
the run services (actions.services.runs) stay the only writers of runs."""
from actions.choices import RunStatus
from actions.models import Run
from portal.actor import Actor


def backend_run_load(run_id):
    """The run with what rendering and reporting read, or None when it is gone."""
    return Run.objects.select_related("action", "requested_by", "entity__blueprint").filter(pk=run_id).first()


def run_log_system(run, message):
    from actions.services.runs import run_log_add

    run_log_add(actor=Actor.system(), run=run, message=message)


def run_end(run, status, label):
    from actions.services.runs import run_finish

    return run_finish(actor=Actor.system(), run=run, status=status, label=label)


def run_fail_logged(run, label):
    """FAILURE with the reason both in the label and as a run log line."""
    run_log_system(run, label)
    return run_end(run, RunStatus.FAILURE, label)


def backoff_seconds(attempt, *, base, cap):
    """Seconds before try `attempt + 1` (or poll `attempt`): base, doubling, capped."""
    return min(float(base) * 2 ** (attempt - 1), float(cap))

"""How a backend loads its run and reports on it: every backend goes through these (system actor), so
the run services (actions.services.runs) stay the only writers of runs."""
import logging

from actions.choices import RunStatus
from actions.models import Run
from portal.actor import Actor

logger = logging.getLogger(__name__)


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


def delivery_retry_run(run_id, attempt, deliver):
    """Retry `attempt` of `run_id` through `deliver(run_id, attempt)`, begun once (actions.services.runs
    run_delivery_begin): a retry delivered twice, or one for an attempt the run has gone past, sends nothing."""
    from actions.services.runs import run_delivery_begin, run_delivery_settled

    if not run_delivery_begin(run_id=run_id, attempt=attempt):
        logger.info("run %s: try %d already begun, or the run moved on: not sent", run_id, attempt)
        return
    deliver(run_id, attempt)
    run_delivery_settled(run_id=run_id, attempt=attempt)


def backoff_seconds(attempt, *, base, cap):
    """Seconds before try `attempt + 1` (or poll `attempt`): base, doubling, capped."""
    return min(float(base) * 2 ** (attempt - 1), float(cap))

"""Test double of the outbox's publishing: messages published after a (captured) commit are handed to handlers
instead of the broker."""
import portal.outbox


def on_publish(monkeypatch, handlers):
    """Messages of the tasks in `handlers` ({task: callback(args)}) go to their callback when published; the others
    are published as usual (an eager test runs them). Fixtures calling this add to each other's handlers."""
    publish = portal.outbox.outbox_publish_many
    if not hasattr(publish, "handlers"):
        real = publish

        def publish(messages, **options):
            others = [message for message in messages if message.task not in publish.handlers]
            for message in messages:
                if message.task in publish.handlers:
                    publish.handlers[message.task](list(message.args))
            return len(messages) - len(others) + (real(others, **options) if others else 0)

        publish.handlers = {}
        monkeypatch.setattr(portal.outbox, "outbox_publish_many", publish)
    publish.handlers.update({task.name: handler for task, handler in handlers.items()})


def published(monkeypatch, *tasks):
    """A list that receives (task name, args) of each message of `tasks` published."""
    calls = []
    on_publish(monkeypatch, {task: (lambda args, name=task.name: calls.append((name, args))) for task in tasks})
    return calls

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()

from portal.outbox_publisher import outbox_publisher_start  # noqa: E402 - needs the settings configured above

outbox_publisher_start()  # committed outbox messages go to the broker from a thread, not while the request waits

"""The benchmark server's settings: the portal's, with a URLconf that adds the bare lock view (bench_urls.py).

Selected for gunicorn only (DJANGO_SETTINGS_MODULE=bench_settings, tests/benchmarks on PYTHONPATH; see
run.py), so the bare view never reaches the product's URLs.
"""
from portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench_urls"

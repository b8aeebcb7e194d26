"""The analysts' dashboard: server-rendered HTML (Jinja2, autoescaped) and SVG charts, no JavaScript.

    web_app[DASHBOARD] = Dashboard(runtime, dynamics, composites)   # what the pages read
    for path, view in ROUTES: app.page(path)(view)                  # pages under /dashboard/

The pages read the store through the sink's store thread, so they are served by the process that runs the
sink role (``stackwatch up`` or ``stackwatch sink``).
"""

from stackwatch.pipeline.web.context import Routes
from stackwatch.pipeline.web.dashboard import digest, labels, views
from stackwatch.pipeline.web.dashboard.views import DASHBOARD, Dashboard

__all__ = ["DASHBOARD", "ROUTES", "Dashboard"]

ROUTES: Routes = (*views.ROUTES, *digest.ROUTES, *labels.ROUTES)

"""The analysts' dashboard: server-rendered HTML (Jinja2, autoescaped) and SVG charts, no JavaScript.

    register_dashboard(app, runtime, settings)      # pages under /dashboard/ on the service's web server

The pages read the store through the sink's store thread, so they are served by the process that runs the
sink role (``stackwatch up`` or ``stackwatch sink``).
"""

from stackwatch.pipeline.web.dashboard.views import register_dashboard

__all__ = ["register_dashboard"]

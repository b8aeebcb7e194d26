"""The service's web server: the pages, the APIs and the rules in front of them (:mod:`.app` wires them).

- ``app``: :func:`~stackwatch.pipeline.web.app.register_web`, the routes and the middleware;
- ``headers``, ``guard``, ``auth``: the security headers, the browser rules, the token;
- ``context``: what the handlers are handed (stored on the aiohttp application);
- ``requests``: bounded bodies, query fields, JSON answers;
- ``health``, ``status``, ``figures``: the probes, ``/metrics`` and ``/api/status``, the live figures they show;
- ``sources_api``, ``sql_api`` (with ``sqlfront``), ``alerts_api``: the JSON APIs;
- ``dashboard``: the analysts' pages.
"""

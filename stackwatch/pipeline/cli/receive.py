"""``stackwatch receive``: a tiny local webhook receiver that prints what arrives (and checks signatures).

stackwatch receive --port 9000 --secret-env STACKWATCH_OPS_SECRET
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import click
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

__all__ = ["receive"]

MAX_BODY = 1024 * 1024


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9000, show_default=True, type=int)
@click.option("--secret-env", default=None, help="Environment variable holding the webhook secret to verify with.")
def receive(host: str, port: int, secret_env: str | None) -> None:
    """Print each webhook POSTed to this address as one JSON line (for trying alerts locally)."""
    secret = os.environ.get(secret_env) if secret_env else None
    if secret_env and not secret:
        raise click.ClickException(f"environment variable {secret_env} is not set")
    if secret:
        from stackwatch.settings.alerts import secret_problem

        problem = secret_problem(secret)
        if problem:
            raise click.ClickException(
                f"--secret-env: {secret_env} does not hold a Standard Webhooks secret: {problem}"
            )
    verifier = Webhook(secret) if secret else None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.send_error(413, "body too large")
                return
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            verified: bool | None = None
            if verifier is not None:
                try:
                    verifier.verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    verified = False
            try:
                payload: object = json.loads(body)
            except ValueError:
                payload = body.decode("utf-8", "replace")
            line = {"path": self.path, "webhook-id": headers.get("webhook-id"), "verified": verified, "body": payload}
            click.echo(json.dumps(line, ensure_ascii=False))
            self.send_response(204 if verified is not False else 401)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    click.echo(f"receiving webhooks on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

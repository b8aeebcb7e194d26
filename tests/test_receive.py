"""`stackwatch receive`: prints what arrives and checks Standard Webhooks signatures."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from stackwatch.pipeline.kafka.broker import free_port, wait_for_port

SECRET = "whsec_" + base64.b64encode(b"receiver secret").decode()


def test_the_receiver_verifies_signatures_and_prints_one_line_per_webhook() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "stackwatch.pipeline.cli", "receive", "--port", str(port), "--secret-env", "RX"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RX": SECRET},
        text=True,
    )
    try:
        assert wait_for_port("127.0.0.1", port, timeout=30)
        body = json.dumps({"type": "alert.fired", "data": {"rule": "r"}})
        now = datetime.now(UTC)
        signature = Webhook(SECRET).sign("msg_1", now, body)
        headers = {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
        }
        good = httpx.post(f"http://127.0.0.1:{port}/hook", content=body, headers=headers, timeout=10)
        forged = httpx.post(f"http://127.0.0.1:{port}/hook", content=body + " ", headers=headers, timeout=10)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert good.status_code == 204
    assert forged.status_code == 401
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["verified"] for line in lines] == [True, False]
    assert lines[0]["webhook-id"] == "msg_1"
    assert lines[0]["body"]["data"]["rule"] == "r"

"""The ``digests:`` section: digests sent to webhooks on a schedule (docs/digests.md, "Sent on a schedule").

    digests:
      - name: morning
        period: daily          # or weekly (sent on ``weekday``)
        at: "07:30"            # UTC; quote it (YAML reads 7:30 as a number)
        dynamics: [decoupling] # default: every dynamic
        webhooks: [chat]

A digest is sent once per webhook for each period that ends at ``at``: the day (or week) before it.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Literal

from pydantic import Field, field_validator

from stackwatch.settings.alerts import Name
from stackwatch.settings.base import Section

__all__ = ["WEEKDAYS", "DigestSettings"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class DigestSettings(Section):
    """One scheduled digest: what it covers, when it is sent (UTC), and to which webhooks."""

    name: Name
    period: Literal["daily", "weekly"] = "daily"
    at: str = Field(default="08:00", description="UTC time of day, HH:MM, at which each period ends")
    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] = "monday"
    dynamics: list[str] = Field(default=[], description="the dynamics digested; empty: every dynamic")
    webhooks: list[Name] = Field(min_length=1, description="names of entries of webhooks:")

    @field_validator("at", mode="before")
    @classmethod
    def _check_at(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f"expected a time of day in quotes, such as '07:30' (YAML read {value} as a number)")
        if not isinstance(value, str) or not _TIME.match(value):
            raise ValueError(f"expected a UTC time of day as HH:MM, such as 07:30, got {value!r}")
        return value

    def time_of_day(self) -> time:
        """``at`` as a time: ``07:30`` → ``time(7, 30)``."""
        hours, minutes = self.at.split(":")
        return time(int(hours), int(minutes))

"""SEC EDGAR company filings (8-K, 10-Q, 10-K...) by CIK and form type, from EDGAR's Atom feed.

    source = SecEdgarSource("nvidia-8k", cik="0001045810", form="8-K", user_agent="Acme ops@acme.example")
    # GET https://www.sec.gov/cgi-bin/browse-edgar?action=getcompany&CIK=0001045810&type=8-K&output=atom...

EDGAR refuses clients without a descriptive User-Agent (a name and a contact address), and asks for no more
than ten requests a second across all of a client's traffic: the scheduler's per-host limits keep well under.
Titles carry the company name: "NVIDIA CORP: 8-K - Current report".
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

import httpx

from stackwatch.connectors.http import Document, HttpOptions, HttpPollingSource
from stackwatch.connectors.rss import FEED_ACCEPT, articles_from_feed, parse_feed_document
from stackwatch.signals.messages import Article, DeadLetter

__all__ = ["EDGAR_ENDPOINT", "SecEdgarSource", "parse_edgar"]

EDGAR_ENDPOINT = "https://www.sec.gov/cgi-bin/browse-edgar"
_CIK_SUFFIX = re.compile(r"\s*\(\d{4,10}\)\s*$")


def parse_edgar(
    content: bytes, source: str, fetched_at: datetime, *, connector: str = "sec_edgar", content_type: str = ""
) -> tuple[list[Article], list[DeadLetter]]:
    """Filings from an EDGAR company Atom feed, titled with the company name; ParseError if not a feed."""
    parsed = parse_feed_document(content, content_type)
    articles, rejected = articles_from_feed(parsed, source, fetched_at, connector)
    feed_title = parsed.get("feed", {}).get("title")
    company = _CIK_SUFFIX.sub("", feed_title).strip() if isinstance(feed_title, str) else ""
    if company:
        articles = [
            article if article.title.startswith(company) else replace(article, title=f"{company}: {article.title}")
            for article in articles
        ]
    return articles, rejected


class SecEdgarSource(HttpPollingSource):
    """Polls one company's filings of one form type."""

    type = "sec_edgar"

    def __init__(
        self,
        name: str,
        *,
        cik: str,
        form: str,
        user_agent: str,
        endpoint: str = EDGAR_ENDPOINT,
        count: int = 40,
        timeout: float = 20.0,
        max_bytes: int = 10 * 1024 * 1024,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        params = {
            "action": "getcompany",
            "CIK": cik,
            "type": form,
            "dateb": "",
            "owner": "include",
            "count": str(count),
            "output": "atom",
        }
        options = HttpOptions(timeout=timeout, max_bytes=max_bytes, user_agent=user_agent, accept=FEED_ACCEPT)
        super().__init__(name, endpoint, params=params, options=options, transport=transport)

    def parse(self, document: Document, fetched_at: datetime) -> tuple[list[Article], list[DeadLetter]]:
        return parse_edgar(
            document.content, self.name, fetched_at, connector=self.type, content_type=document.content_type
        )

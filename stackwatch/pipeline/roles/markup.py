"""Outside text made inert in chat markup: Slack mrkdwn and Discord markdown.

Every piece of text that came from a feed (titles, sources, alert messages, evidence) goes through the escape
of the format it is written into, and links are made only to http(s) URLs, with labels that cannot close them:

    >>> slack_text("<!channel> & <https://evil.example/login|click>")
    '&lt;!channel&gt; &amp; &lt;https://evil.example/login|click&gt;'
    >>> slack_link("https://example.com/a?b=1&c=2", "Q1 > Q2")
    '<https://example.com/a?b=1&amp;c=2|Q1 &gt; Q2>'
    >>> print(discord_text("*big* [deal](http://x) <@123> #1"))
    \\*big\\* \\[deal\\]\\(http://x\\) \\<@123\\> \\#1
    >>> discord_text("@everyone") == "@\\u200beveryone"
    True
    >>> print(discord_link("https://example.com/a_(b)", "click](http://evil)"))
    [click\\)\\(http://evil\\)](https://example.com/a_%28b%29)
    >>> print(discord_link("javascript:alert(1)", "click"), slack_link("data:text/html,x", "click"))
    click click

A text cut to a limit is cut before escaping (an escape is never split) and ends with ``…``.
"""

from __future__ import annotations

import re
import urllib.parse

__all__ = ["discord_link", "discord_text", "link_url", "slack_link", "slack_text"]

ELLIPSIS = "…"
_SLACK = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_DISCORD_SPECIAL = frozenset("\\*_~`|<>[]()#")
_BROADCAST = re.compile(r"@(everyone|here)\b", re.IGNORECASE)
_ZERO_WIDTH_SPACE = "\u200b"
_LINK_SCHEMES = frozenset({"http", "https"})
_MAX_URL = 2000
_URL_SAFE = "/?:@&=+$,;-_.!~*'#%"
"""Characters left as they are in a link's path, query and fragment; the rest (spaces, ``()[]<>|\\"`` and
non-ASCII) is percent-encoded, so a URL cannot close the link it is in."""
# A host and port, without a user name: https://good.example@evil.example reads as the wrong host.
_HOST = re.compile(r"^[A-Za-z0-9._~%!$&'*+,;=:\[\]-]+$")


def _bounded(pieces: list[str], limit: int | None) -> str:
    """Join escaped pieces (one per source character), cut so the result has at most ``limit`` characters."""
    text = "".join(pieces)
    if limit is None or len(text) <= limit:
        return text
    kept: list[str] = []
    size = len(ELLIPSIS)
    for piece in pieces:
        if size + len(piece) > limit:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + ELLIPSIS


def slack_text(text: str, limit: int | None = None) -> str:
    """``text`` as Slack mrkdwn shows it literally: ``&``, ``<`` and ``>`` as entities (so no ``<!channel>``,
    ``<@U…>`` or ``<url|label>`` can be formed); at most ``limit`` characters once escaped."""
    return _bounded([_SLACK.get(char, char) for char in text], limit)


def discord_text(text: str, limit: int | None = None) -> str:
    """``text`` as Discord markdown shows it literally: markdown characters backslash-escaped (so no link, mention,
    heading, quote or code span can be formed), ``@everyone``/``@here`` broken with a zero-width space."""
    text = _BROADCAST.sub(lambda match: "@" + _ZERO_WIDTH_SPACE + match.group(1), text)
    return _bounded([f"\\{char}" if char in _DISCORD_SPECIAL else char for char in text], limit)


def link_url(url: str) -> str | None:
    """``url`` fit to be a link target, or None: only absolute http(s) URLs with a host (and no user name), with
    every character that could end a link (``()[]<>|``, spaces, quotes) percent-encoded.

    >>> link_url("https://example.com/a b|c>"), link_url("data:text/html,<script>"), link_url("//evil.example")
    ('https://example.com/a%20b%7Cc%3E', None, None)
    """
    if len(url) > _MAX_URL or any(ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in _LINK_SCHEMES or not parts.hostname or not _HOST.fullmatch(parts.netloc):
        return None
    query = f"?{urllib.parse.quote(parts.query, safe=_URL_SAFE)}" if parts.query else ""
    fragment = f"#{urllib.parse.quote(parts.fragment, safe=_URL_SAFE)}" if parts.fragment else ""
    return f"{parts.scheme.lower()}://{parts.netloc}{urllib.parse.quote(parts.path, safe=_URL_SAFE)}{query}{fragment}"


def slack_link(url: str, label: str, limit: int | None = None) -> str:
    """A Slack ``<url|label>`` link, or the escaped label alone when ``url`` is not an http(s) URL.

    ``limit`` bounds the whole markup: the label is cut to fit, the URL never (a link that cannot fit is text).
    """
    target = link_url(url)
    if target is None:
        return slack_text(label, limit)
    target = slack_text(target)
    if not label.strip():
        return f"<{target}>" if limit is None or len(target) + 2 <= limit else ""
    room = None if limit is None else limit - len(target) - 3
    return f"<{target}|{slack_text(label, room)}>" if room is None or room > 0 else slack_text(label, limit)


def discord_link(url: str, label: str, limit: int | None = None) -> str:
    """A Discord ``[label](url)`` masked link, or the escaped label alone when ``url`` is not an http(s) URL.

    Brackets in the label become parentheses (escaped), so the label cannot end the link whatever the client's
    parser does with backslashes. ``limit`` bounds the whole markup: the label is cut to fit, the URL never.
    """
    target = link_url(url)
    if target is None:
        return discord_text(label, limit)
    label = label.replace("[", "(").replace("]", ")") if label.strip() else target
    room = None if limit is None else limit - len(target) - 4
    return f"[{discord_text(label, room)}]({target})" if room is None or room > 0 else discord_text(label, limit)

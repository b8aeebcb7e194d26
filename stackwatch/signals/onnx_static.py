"""Static int8 activations for the exported encoder: one fixed scale per quantized tensor, so a text's embedding
never depends on the texts that share its batch.

ONNX Runtime's ``quantize_dynamic`` gives every Linear layer's input a ``DynamicQuantizeLinear`` node, which takes
its uint8 scale and zero point from the minimum and maximum of the whole input tensor: every text of the batch and
every padding position. One long or unusual neighbour changes the grid a short headline is rounded to. This module
keeps the dynamic model's int8 weights (per output channel) and replaces each ``DynamicQuantizeLinear`` with a
``QuantizeLinear`` whose scale and zero point were measured once, on fixed texts, through the fp32 network::

    >>> ranges = calibrate(fp32_model, activations(dynamic_model), tokenizer, calibration_texts())  # doctest: +SKIP
    >>> make_static(dynamic_model, ranges, int8_model)                                              # doctest: +SKIP

Calibration runs the texts one at a time (no padding) on one thread and keeps each tensor's minimum and maximum,
so it gives the same ranges on every run. Each ``MatMulInteger → Cast → Mul → Add`` chain becomes one
``MatMulIntegerToFloat`` with the bias inside, the kernel ONNX Runtime itself fuses that chain into at load time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CALIBRATION", "activations", "calibrate", "calibration_digest", "calibration_texts", "make_static"]

CALIBRATION = Path(__file__).resolve().parent.parent / "models" / "calibration.json"
"""The calibration texts: 239 records of the training split, fixed so the export does not follow the corpus."""
_MS_DOMAIN = "com.microsoft"


def calibration_texts(path: Path = CALIBRATION) -> list[str]:
    """The texts :func:`calibrate` measures, in file order."""
    texts = json.loads(path.read_text(encoding="utf-8")).get("texts")
    if not isinstance(texts, list) or not texts or not all(isinstance(text, str) and text for text in texts):
        raise ValueError(f"{path}: 'texts' must be a non-empty list of non-empty strings")
    return list(texts)


def calibration_digest(path: Path = CALIBRATION) -> str:
    """A short hash of the calibration file: part of the export cache key."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def activations(dynamic_model: Path) -> list[str]:
    """The tensors ``quantize_dynamic`` quantizes at run time in ``dynamic_model``: what needs a fixed range."""
    import onnx

    graph = onnx.load(str(dynamic_model), load_external_data=False).graph
    return [node.input[0] for node in graph.node if node.op_type == "DynamicQuantizeLinear"]


def calibrate(
    fp32_model: Path, names: Sequence[str], tokenizer: Any, texts: Sequence[str]
) -> dict[str, tuple[float, float]]:
    """The minimum and maximum of each tensor in ``names`` over ``texts``, run one at a time through the fp32
    network. ``tokenizer`` is a ``tokenizers.Tokenizer`` with truncation and no padding."""
    import onnx
    import onnxruntime  # type: ignore[import-untyped]

    model = onnx.load(str(fp32_model))
    model.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in names)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    inputs = [item.name for item in session.get_inputs()]
    low = dict.fromkeys(names, np.inf)
    high = dict.fromkeys(names, -np.inf)
    for text in texts:
        encoding = tokenizer.encode(text)
        columns = {
            "input_ids": encoding.ids,
            "attention_mask": encoding.attention_mask,
            "token_type_ids": encoding.type_ids,
        }
        values = session.run(list(names), {name: np.asarray([columns[name]], dtype=np.int64) for name in inputs})
        for name, value in zip(names, values, strict=True):
            low[name] = min(low[name], float(value.min()))
            high[name] = max(high[name], float(value.max()))
    return {name: (low[name], high[name]) for name in names}


def _uint8_grid(low: float, high: float) -> tuple[float, int]:
    """Scale and zero point for ``[low, high]`` widened to hold 0, as ``DynamicQuantizeLinear`` computes them."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255.0 if high > low else 1.0
    zero_point = int(np.clip(np.rint(-low / scale), 0, 255))
    return scale, zero_point


def make_static(dynamic_model: Path, ranges: dict[str, tuple[float, float]], out: Path) -> None:
    """Write ``dynamic_model`` to ``out`` with every activation quantized on its calibrated range.

    Raises ValueError when the graph is not the ``MatMulInteger → Cast → Mul`` shape ``quantize_dynamic`` writes,
    rather than leave a dynamic (batch-dependent) node in place."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(dynamic_model))
    graph = model.graph
    original = list(graph.node)  # one wrapper per node, so that id() names each node for the whole pass
    constants = {item.name: item for item in graph.initializer}
    producer = {output: node for node in original for output in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in original:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def only_consumer(name: str, op_type: str) -> Any:
        found = consumers.get(name, [])
        if len(found) != 1 or found[0].op_type != op_type:
            raise ValueError(f"{name} feeds {[node.op_type for node in found]}, expected one {op_type}")
        return found[0]

    replaced: dict[int, list[Any]] = {}  # node id -> what stands in its place (nothing: removed)
    for node in original:
        if node.op_type == "DynamicQuantizeLinear":
            source: str = node.input[0]
            quantized, scale_name, zero_name = (str(name) for name in node.output)
            if source not in ranges:
                raise ValueError(f"no calibrated range for {source}")
            scale, zero_point = _uint8_grid(*ranges[source])
            graph.initializer.extend(
                [
                    numpy_helper.from_array(np.array(scale, dtype=np.float32), scale_name),
                    numpy_helper.from_array(np.array(zero_point, dtype=np.uint8), zero_name),
                ]
            )
            replaced[id(node)] = [
                helper.make_node("QuantizeLinear", [source, scale_name, zero_name], [quantized], name=node.name)
            ]
        elif node.op_type == "MatMulInteger":
            cast = only_consumer(node.output[0], "Cast")
            rescale = only_consumer(cast.output[0], "Mul")
            scales = producer[next(name for name in rescale.input if name != cast.output[0])]
            if scales.op_type != "Mul":
                raise ValueError(f"{rescale.name}: expected the product of the two scales, found {scales.op_type}")
            inputs = [node.input[0], node.input[1], scales.input[0], scales.input[1], *node.input[2:4]]
            output = rescale.output[0]
            follower = consumers.get(output, [])
            if len(follower) == 1 and follower[0].op_type == "Add":
                add = follower[0]
                bias = next((name for name in add.input if name != output), "")
                if bias in constants and len(constants[bias].dims) == 1:
                    inputs.append(bias)
                    output = add.output[0]
                    replaced[id(add)] = []
            replaced[id(cast)] = replaced[id(rescale)] = replaced[id(scales)] = []
            replaced[id(node)] = [
                helper.make_node(
                    "MatMulIntegerToFloat", inputs, [output], name=f"{node.name}_static", domain=_MS_DOMAIN
                )
            ]
    nodes = [new for node in original for new in replaced.get(id(node), [node])]
    del graph.node[:]
    graph.node.extend(nodes)
    left = {node.op_type for node in nodes} & {"DynamicQuantizeLinear", "MatMulInteger"}
    if left:
        raise ValueError(f"dynamic quantization left in the graph: {sorted(left)}")
    if not any(opset.domain == _MS_DOMAIN for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid(_MS_DOMAIN, 1))
    onnx.save(model, str(out))

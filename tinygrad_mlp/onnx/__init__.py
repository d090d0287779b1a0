"""Floor 6 (onnx): export a Module or a function of Tensors to ONNX.

``export(model_or_fn, example_inputs, path, input_names=, output_names=, dynamic_axes= or
dynamic_batch=True, opset=)`` traces the forward and translates every recorded primitive op with
its entry in ``TRANSLATIONS`` (one function per op class name; ``translate.py``). Nothing in the
package imports this module, and it imports ``onnx`` only when ``export`` runs, so everything else
works without the optional extra (``pip install 'tinygrad_mlp[onnx]'``).
"""
from .export import DEFAULT_OPSET, MIN_OPSET, export
from .trace import DERIVATIONS, ExportError
from .translate import DERIVED, TRANSLATIONS

__all__ = ["export", "ExportError", "TRANSLATIONS", "DERIVATIONS", "DERIVED", "DEFAULT_OPSET",
           "MIN_OPSET"]

"""ONNX import and export: ``load_onnx`` (ONNX → IR) and ``save_onnx`` (IR → ONNX)."""

from .exporter import save_onnx, to_onnx
from .importer import load_onnx

__all__ = ["load_onnx", "save_onnx", "to_onnx"]

"""Frontends produce the IR: ONNX files and the ``.rir`` text form."""

"""``.rir`` files (the IR's own text form, written and read by ``ridgeline.ir.rir_file``); this
module keeps ``ridgeline.frontends.rir`` importable beside the other model formats."""

from ..ir.rir_file import MAX_TEXT_BYTES, load_rir, save_rir, sidecar_path

__all__ = ["MAX_TEXT_BYTES", "load_rir", "save_rir", "sidecar_path"]

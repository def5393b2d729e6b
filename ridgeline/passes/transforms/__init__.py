"""The built-in passes, one per module; each registers itself with ``register_pass``.

Named pipelines registered here:

* ``cleanup`` — fold constants, canonicalize, merge duplicates, drop dead code;
* ``default`` — the recommended order: cleanup, then the fusions from the largest pattern to the
  smallest (attention, normalizations, gelu, matmul epilogues, elementwise chains), then cleanup.
"""

from ..registry import register_pipeline

__all__ = ["CLEANUP", "DEFAULT"]

CLEANUP = "fold-constants,canonicalize,cse,dce"
DEFAULT = ("fold-constants,canonicalize,fold-constants,cse,dce,"
           "fuse-rotary,fuse-attention,fuse-layernorm,fuse-rmsnorm,fuse-gelu,cse,canonicalize,"
           "fuse-matmul-epilogue,fuse-elementwise,cse,dce")

register_pipeline("cleanup", CLEANUP, summary="fold constants, canonicalize, merge duplicates, remove dead code",
                  origin="built-in")
register_pipeline("default", DEFAULT, summary="the recommended order: cleanup, fusions (largest pattern first), "
                  "cleanup", origin="built-in")

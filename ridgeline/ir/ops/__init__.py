"""Op specs, one per op, grouped by family in the modules of this package.

Each module declares its ops with ``@op`` (see ``spec.py``); the registry imports every module
of the package on first use, so adding an op family is adding a file.
"""

from .registry import all_specs, find_spec, get_spec, register_spec
from .spec import (ALL, ANY, FLOAT, FLOAT8, INDEX, INT, INT4, NUMERIC, REQUIRED, SIGNED, AttrSpec,
                   CostContext, InferContext, OpSpec, PortSpec, op)

__all__ = [
    "all_specs", "find_spec", "get_spec", "register_spec", "op", "OpSpec", "AttrSpec", "PortSpec",
    "InferContext", "CostContext", "REQUIRED", "FLOAT", "FLOAT8", "INT", "INT4", "SIGNED", "NUMERIC", "ALL",
    "ANY", "INDEX",
]

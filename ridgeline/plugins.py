"""Entry-point plugins and ``Registry[T]``: see ``ridgeline.ir.plugins``, where they live so that
the ir layer's op registry can use them too."""

from .ir.plugins import GROUPS, PluginRef, Registry, discover, discover_lenient, import_ref, load

__all__ = ["GROUPS", "PluginRef", "Registry", "discover", "discover_lenient", "import_ref", "load"]

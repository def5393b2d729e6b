"""An example ridgeline plugin: the ``fuse-relu6`` pass and the ``rpi5`` target.

Both are declared as entry points in ``pyproject.toml``; ridgeline imports them only when used.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"

"""Seeded random inputs for any graph: the generator lives in ``ridgeline.ir.inputs`` (passes and
commands use it too); this module keeps ``ridgeline.testing.inputs`` importable."""

from ..ir.inputs import MAX_RANDOM_BYTES, concrete_shape, random_inputs, restore_dtypes, testing_meta

__all__ = ["MAX_RANDOM_BYTES", "concrete_shape", "random_inputs", "restore_dtypes", "testing_meta"]

"""The pure domain core: plain functions over frozen values, no I/O."""

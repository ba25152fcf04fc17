"""hpc_tf's version, in a module of its own so that rendering needs nothing else from the package."""

__version__ = "0.1.0"

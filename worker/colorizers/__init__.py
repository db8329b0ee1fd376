"""Colorization methods: pure torch/numpy/Pillow code.

Import rule: this package and ``catalogue``/``manifest``/``base`` are torch-free so the web front end can
describe the methods without loading torch. Modules that need torch (``registry``, ``lab``, ``nets``,
``exemplar``...) are imported only by the worker, the CLI and the benchmarks.
"""

"""The colorizer library: pure torch/numpy/Pillow code, imported by the worker, the CLI and the benchmarks.

It imports nothing from ``backend/`` or the worker service (``celery_app``, ``tasks``, ``runner``).
The web process imports only its torch-free parts: :mod:`.methods` (the methods, in display order, one file
each), :mod:`.method_info`, :mod:`.manifest`, :mod:`.weights`, :mod:`.base`, :mod:`.lab`, :mod:`.hints`
and :mod:`.pipeline`; a method's ``load`` imports torch only when it is called. Loaded colorizers are cached
by :mod:`.loading`; nets live in :mod:`.nets` (one per file), training in :mod:`.training` (serving never
imports it), and ``colorlab evaluate`` in :mod:`.evaluation`.
"""

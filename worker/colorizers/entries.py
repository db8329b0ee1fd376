"""Catalogue entries for every colorization method (torch-free). Imported by ``catalogue``."""

from __future__ import annotations

from worker.colorizers.catalogue import CATALOGUE, MethodInfo, Param  # noqa: F401

# Entries are added below by each method's author, e.g.:
# CATALOGUE.add(MethodInfo(name="cnn", title="...", description="...", weights=("cnn",), batchable=True))

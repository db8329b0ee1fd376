"""Fixtures shared by the backend tests."""

from __future__ import annotations

import pytest

from backend.config import get_settings
from worker.runner import Runner


@pytest.fixture
def runner(database: str) -> Runner:
    """The worker's job runner (what a Celery task calls) on the test database."""
    return Runner(get_settings())

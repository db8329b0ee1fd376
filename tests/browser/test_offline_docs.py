"""/docs and /redoc work without internet: every request to another host is blocked, and the operations
are still listed (Swagger UI and ReDoc come from this server)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow


def block_other_hosts(page, base_url: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Abort every request that is not to ``base_url``'s host (or a data:/blob: URL); returns them."""
    ours = urlsplit(base_url).netloc
    blocked: list[str] = []

    def handle(route) -> None:  # type: ignore[no-untyped-def]
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).netloc == ours:
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.context.route("**/*", handle)
    return blocked


def test_swagger_ui_lists_the_operations_offline(idle_stack, page) -> None:  # type: ignore[no-untyped-def]
    blocked = block_other_hosts(page, idle_stack.base_url)
    page.goto(f"{idle_stack.base_url}/docs")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.wait_for_selector(".opblock", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    for expected in ("/colorize", "/batches", "/jobs/{job_id}", "/methods"):
        assert any(expected == p.replace("\u200b", "").strip() for p in paths), paths
    assert blocked == []


def test_redoc_lists_the_operations_offline(idle_stack, page) -> None:  # type: ignore[no-untyped-def]
    blocked = block_other_hosts(page, idle_stack.base_url)
    page.goto(f"{idle_stack.base_url}/redoc")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.locator("h2", has_text="Queue many photos with one method").wait_for(timeout=30_000)
    assert page.locator("h2", has_text="Queue a colorization job").count() == 1
    assert blocked == []

"""What `colorlab run` prints once the web app answers."""

from __future__ import annotations

from backend.cli.app_commands import running_message
from backend.config import Settings


def test_the_url_is_printed_and_the_api_docs_only_where_they_are_served() -> None:
    on = running_message(Settings(public_url="http://example.test"))
    assert "ColorLab is running at http://example.test/" in on
    assert "API docs: http://example.test/docs" in on
    # API_DOCS=false: /docs answers 404, so the banner does not send people there.
    off = running_message(Settings(public_url="http://example.test", api_docs=False))
    assert "ColorLab is running at http://example.test/" in off and "/docs" not in off

"""The default method in the browser: preselected with its plain-words vividness slider on the upload page,
and the job page's "Colour again" re-running the same photo at another vividness (real server + worker)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sample_photo

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_default_method_vividness_and_colour_again(stack, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(stack.base_url + "/")
    expect(page.locator("#method-unet-bins")).to_be_checked()  # the default, without choosing anything
    slider = page.locator("#opt-vividness")
    expect(slider).to_have_attribute("type", "range")
    expect(page.locator(".ends-row").first).to_contain_text("safer")
    expect(page.locator(".ends-row").first).to_contain_text("more vivid")
    expect(page.locator("#opt-hints")).to_have_count(0)  # hints come through the API / job page
    slider.fill("0.8")
    page.set_input_files("#image", str(sample_photo()))
    page.locator("#submit").click()

    page.wait_for_url(re.compile(r"/jobs/[\w-]+/view$"))
    first = page.url.rstrip("/").split("/")[-2]
    expect(page.locator("#job-status")).to_have_text("Done", timeout=90_000)
    expect(page.locator("#vividness-section")).to_be_visible()
    expect(page.locator("#vividness")).to_have_value("0.8")
    page.locator("#vividness").fill("0.2")
    page.locator("#vividness-apply").click()
    page.wait_for_url(lambda url: url.endswith("/view") and first not in url)  # the new job's page
    expect(page.locator("#job-status")).to_have_text("Done", timeout=90_000)
    expect(page.locator("#vividness")).to_have_value("0.2")
    page.wait_for_function("document.getElementById('compare-top').naturalWidth > 0")

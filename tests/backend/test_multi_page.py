"""Files that hold more than one photo: a multi-page TIFF's pages (backend.tiff_pages) become photos of their
own in a batch and on the command line, and a single upload of one, or of an animation, is refused with
words that say so, not colorized on its first page unsaid."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import func, select

from backend import batch_uploads, tiff_pages
from backend.cli import main
from backend.config import get_settings
from backend.db import session_scope
from backend.errors import UserError
from backend.images import decode
from backend.models import Job
from tests.conftest import method_available


def gray_page(value: int, size: tuple[int, int] = (48, 32)) -> np.ndarray:
    """A page of its own: a gradient plus ``value`` (pages tell apart by their pixels)."""
    width, height = size
    ramp = np.add.outer(np.arange(height), np.arange(width)) % 64
    return (ramp + value).astype(np.uint8)


def pillow_tiff(pages: list[np.ndarray], **options: object) -> bytes:
    """Pages saved by Pillow (one directory each, chained), LZW-compressed by default."""
    images = [Image.fromarray(p) for p in pages]
    buf = io.BytesIO()
    options.setdefault("compression", "tiff_lzw")
    images[0].save(buf, format="TIFF", save_all=True, append_images=images[1:], **options)
    return buf.getvalue()


def written_tiff(pages: list[tuple[np.ndarray, int]], *, big: bool = False) -> bytes:
    """A TIFF written by hand: uncompressed 8-bit gray pages, each with its NewSubfileType (1: a preview, 4:
    a mask), classic or BigTIFF, the directories chained in order."""
    order = "<"
    offset, entries_code, entry_size = ("Q", "Q", 20) if big else ("I", "H", 12)
    header = b"II" + (struct.pack("<HHHQ", 43, 8, 0, 0) if big else struct.pack("<HI", 42, 0))
    out = bytearray(header)
    first_at = 8 if big else 4
    previous_next_at = first_at
    for pixels, subfile in pages:
        height, width = pixels.shape
        strip_at = len(out)
        out += pixels.tobytes()
        if len(out) % 2:
            out += b"\0"
        directory = len(out)
        struct.pack_into(order + offset, out, previous_next_at, directory)
        tags = [
            (254, 4, subfile),
            (256, 4, width),
            (257, 4, height),
            (258, 3, 8),
            (259, 3, 1),
            (262, 3, 1),
            (273, 4, strip_at),
            (277, 3, 1),
            (278, 4, height),
            (279, 4, width * height),
        ]
        out += struct.pack(order + entries_code, len(tags))
        for tag, kind, value in tags:
            if big:
                packed = struct.pack(order + ("H" if kind == 3 else "I"), value).ljust(8, b"\0")
                out += struct.pack(order + "HHQ", tag, kind, 1) + packed
            else:
                packed = struct.pack(order + ("H" if kind == 3 else "I"), value).ljust(4, b"\0")
                out += struct.pack(order + "HHI", tag, kind, 1) + packed
        previous_next_at = len(out)
        out += struct.pack(order + offset, 0)
        assert entry_size  # the entries just written are this long
    return bytes(out)


def page_pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        assert getattr(img, "n_frames", 1) == 1
        return np.asarray(img.convert("L"))


def test_each_page_becomes_a_file_of_its_own_with_its_pixels_exactly() -> None:
    pages = [gray_page(v) for v in (0, 70, 140)]
    data = pillow_tiff(pages)
    found = tiff_pages.pages(data)
    assert len(found) == 3
    for pixels, directory in zip(pages, found, strict=True):
        assert np.array_equal(page_pixels(tiff_pages.page(data, directory)), pixels)
    assert tiff_pages.pages(pillow_tiff(pages[:1])) == tiff_pages.pages(pillow_tiff(pages[:1]))[:1]
    assert len(tiff_pages.pages(pillow_tiff(pages[:1]))) == 1
    assert tiff_pages.pages(b"\x89PNG\r\n\x1a\n" + bytes(40)) == []  # not a TIFF


@pytest.mark.parametrize("big", [False, True], ids=["classic", "BigTIFF"])
def test_previews_and_masks_are_not_pages(big: bool) -> None:
    photo, preview, mask, back = gray_page(10), gray_page(50, (12, 8)), gray_page(0), gray_page(200)
    data = written_tiff([(photo, 0), (preview, 1), (mask, 4), (back, 0)], big=big)
    found = tiff_pages.pages(data)
    assert len(found) == 2
    assert np.array_equal(page_pixels(tiff_pages.page(data, found[0])), photo)
    assert np.array_equal(page_pixels(tiff_pages.page(data, found[1])), back)


def test_a_looping_or_cut_chain_ends_where_it_stops_reading_well() -> None:
    data = bytearray(written_tiff([(gray_page(0), 0), (gray_page(90), 0)]))
    first, second = tiff_pages.pages(bytes(data))
    entries = struct.unpack_from("<H", data, second)[0]
    struct.pack_into("<I", data, second + 2 + 12 * entries, first)  # the second points back at the first
    assert tiff_pages.pages(bytes(data)) == [first, second]
    struct.pack_into("<I", data, second + 2 + 12 * entries, len(data) + 1000)  # past the end of the file
    assert tiff_pages.pages(bytes(data)) == [first, second]


def test_an_upload_of_several_pages_or_an_animation_is_refused_and_a_stored_one_still_decodes() -> None:
    limits = {"max_pixels": 10_000_000, "one_photo": True}
    tiff = pillow_tiff([gray_page(0), gray_page(100), gray_page(200)])
    with pytest.raises(UserError) as raised:
        decode(tiff, **limits)  # type: ignore[arg-type]
    assert raised.value.status_code == 422
    assert "holds 3 pages" in raised.value.detail and "batch" in raised.value.detail
    # a photo stored before (a job's input) is read as it always was: its first page
    assert np.array_equal(decode(tiff, max_pixels=10_000_000).rgb[..., 0], gray_page(0))

    frames = [Image.fromarray(gray_page(v)).convert("RGB") for v in (0, 80, 160)]
    for fmt, said in (("GIF", "an animation;"), ("PNG", "an animation of 3 frames"), ("WEBP", "of 3 frames")):
        buf = io.BytesIO()
        frames[0].save(buf, format=fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
        with pytest.raises(UserError) as raised:
            decode(buf.getvalue(), **limits)  # type: ignore[arg-type]
        assert raised.value.status_code == 422 and said in raised.value.detail, (fmt, raised.value.detail)
        still = io.BytesIO()
        frames[0].save(still, format=fmt)
        assert decode(still.getvalue(), **limits).width == 48  # type: ignore[arg-type]


def test_a_cameras_mpo_is_one_photo() -> None:
    """A phone's JPEG with a second picture beside it (a depth map, a stereo view): the photo is taken."""
    frames = [Image.fromarray(gray_page(v)).convert("RGB") for v in (30, 130)]
    buf = io.BytesIO()
    frames[0].save(buf, format="MPO", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(buf.getvalue())).format == "MPO"
    assert decode(buf.getvalue(), max_pixels=10_000_000, one_photo=True).width == 48


def test_a_batchs_multi_page_tiff_becomes_its_pages_within_the_byte_limit() -> None:
    tiff = pillow_tiff([gray_page(0), gray_page(100), gray_page(200)])
    files = [
        batch_uploads.BatchFile("box/scan.tif", tiff, None),
        batch_uploads.BatchFile("other.png", b"png", None),
        batch_uploads.BatchFile("bad.jpg", None, "refused before"),
    ]
    roomy = get_settings().model_copy(update={"batch_max_bytes": 10 * len(tiff)})
    split = batch_uploads.split_pages(files, roomy)
    assert [f.path for f in split] == [
        "box/scan-page1.tif", "box/scan-page2.tif", "box/scan-page3.tif", "other.png", "bad.jpg",
    ]  # fmt: skip
    assert [page_pixels(f.data)[0, 0] for f in split[:3] if f.data is not None] == [0, 100, 200]
    tight = get_settings().model_copy(update={"batch_max_bytes": 2 * len(tiff)})
    refused = batch_uploads.split_pages(files, tight)
    assert refused[0].path == "box/scan.tif" and refused[0].data is None
    assert refused[0].refused is not None and "3 pages" in refused[0].refused


def jobs_count() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def test_the_api_takes_a_multi_page_tiff_as_a_batch_and_refuses_it_alone(client) -> None:  # type: ignore[no-untyped-def]
    if not method_available("cnn"):
        pytest.fail("the bundled cnn weights are missing from the checkout")
    tiff = pillow_tiff([gray_page(0), gray_page(100), gray_page(200)])
    before = jobs_count()
    r = client.post("/colorize", files={"image": ("album.tif", tiff, "image/tiff")}, data={"method": "cnn"})
    assert r.status_code == 422 and "holds 3 pages" in r.json()["detail"], r.text
    assert r.json()["field"] == "image"
    assert jobs_count() == before  # nothing stored
    r = client.post("/batches", files=[("images", ("album.tif", tiff, "image/tiff"))], data={"method": "cnn"})
    assert r.status_code == 202, r.text
    batch = client.get(f"/batches/{r.json()['id']}").json()
    names = sorted(item["name"] for item in batch["items"])
    assert names == ["album-page1.tif", "album-page2.tif", "album-page3.tif"]
    assert jobs_count() == before + 3


def test_the_cli_colorizes_each_page_and_says_an_animation_is_one(tmp_path: Path) -> None:
    if not method_available("cnn"):
        pytest.fail("the bundled cnn weights are missing from the checkout")
    box = tmp_path / "box"
    box.mkdir()
    (box / "album.tif").write_bytes(pillow_tiff([gray_page(0), gray_page(100)]))
    frames = [Image.fromarray(gray_page(v)).convert("RGB") for v in (0, 80)]
    frames[0].save(box / "moving.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = tmp_path / "out"
    args = ["colorize", str(box), "-o", str(out), "--method", "cnn", "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "moving.gif: the file is an animation" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["album-page1.png", "album-page2.png"]
    means = [float(np.asarray(Image.open(out / f"album-page{k}.png").convert("L")).mean()) for k in (1, 2)]
    assert 85 < means[1] - means[0] < 115  # each page's own pixels: the second is 100 levels lighter
    again = CliRunner().invoke(main, args)  # a re-run replaces each page's own result
    assert again.exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == ["album-page1.png", "album-page2.png"]

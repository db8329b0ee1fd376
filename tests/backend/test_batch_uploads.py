"""A batch's photos read and validated (backend.batch_uploads), and the method choices of a re-run and of a
comparison (backend.method_choice), without the HTTP layer: the routes' answers are in test_batches_names.py,
test_api.py and test_fix_previews.py."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Coroutine
from typing import Any

import pytest
from PIL import Image
from starlette.datastructures import FormData, UploadFile

from backend import batch_uploads, method_choice
from backend.config import Settings, get_settings
from backend.errors import UserError
from backend.models import Job
from tests.conftest import method_available


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (32, 24), 100).save(buf, format="PNG")
    return buf.getvalue()


def a_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def upload(name: str, data: bytes) -> UploadFile:
    return UploadFile(io.BytesIO(data), size=len(data), filename=name)


def settings(**values: int) -> Settings:
    return get_settings().model_copy(update=values)


def refusal(call: Coroutine[Any, Any, object]) -> UserError:
    with pytest.raises(UserError) as raised:
        asyncio.run(call)
    return raised.value


def test_files_and_zip_members_are_read_with_each_oversized_one_refused() -> None:
    limits = settings(max_upload_bytes=1000, batch_max_bytes=100_000)
    sent = [
        upload("a.png", png()),
        upload("big.png", b"x" * 1001),
        upload("", b""),  # an empty file input: not a file
        upload("photos.zip", a_zip({"in/b.png": png(), "in/huge.png": b"y" * 2000, "__MACOSX/._b.png": b""})),
        upload("broken.zip", b"not a zip at all"),
    ]
    files = asyncio.run(batch_uploads.read_files(sent, limits))
    too_large = "larger than the 1,000-byte limit"
    assert [(f.path, f.data is not None, f.refused) for f in files] == [
        ("a.png", True, None),
        ("big.png", False, too_large),
        ("in/b.png", True, None),
        ("in/huge.png", False, too_large),
        ("broken.zip", False, "the zip file is damaged or not a zip"),
    ]


def test_a_batch_too_big_as_a_whole_is_refused_with_one_wording() -> None:
    assert refusal(batch_uploads.read_files([upload("", b"")], settings())).detail == (
        "no photos: send them as repeated `images` fields, or one zip"
    )
    three = settings(batch_max_photos=2)
    sent = [upload(f"{i}.png", png()) for i in range(3)]
    assert refusal(batch_uploads.read_files(sent, three)).detail == (
        "3 photos; a batch takes at most 2 (BATCH_MAX_PHOTOS)"
    )
    unpacked = [upload("a.png", png()), upload("b.zip", a_zip({"1.png": png(), "2.png": png()}))]
    assert refusal(batch_uploads.read_files(unpacked, three)).detail == (
        "3 photos; a batch takes at most 2 (BATCH_MAX_PHOTOS)"
    )
    three_photos = a_zip({f"{i}.png": png() for i in range(3)})
    refused = refusal(batch_uploads.read_files([upload("c.zip", three_photos)], three))
    assert refused.status_code == 413
    assert refused.detail == "the zip holds 3 files; a batch takes at most 2 photos"
    one = settings(batch_max_photos=1)
    assert refusal(batch_uploads.read_files([upload("c.zip", three_photos)], one)).detail == (
        "the zip holds 3 files; a batch takes at most 1 photo"
    )


def test_photos_are_validated_one_by_one_and_named_apart() -> None:
    files = [
        batch_uploads.BatchFile("x/IMG_1.png", png(), None),
        batch_uploads.BatchFile("y/IMG_1.png", b"not an image", None),
        batch_uploads.BatchFile("big.png", None, "larger than the 1-byte limit"),
    ]
    accepted, rejected = asyncio.run(batch_uploads.validate(files, settings()))
    assert [photo.filename for photo in accepted] == ["x/IMG_1.png"]
    assert [r["name"] for r in rejected] == ["y/IMG_1.png", "big.png"]
    assert rejected[1]["detail"] == "larger than the 1-byte limit"
    refused = refusal(batch_uploads.validate(files[1:], settings()))
    assert refused.status_code == 422 and refused.detail.startswith("none of the 2 files is a usable photo (")


def test_photos_sent_as_image_are_refused_not_dropped() -> None:
    with pytest.raises(UserError, match="repeated `images` fields, not `image`"):
        batch_uploads.refuse_image_field(FormData([("image", "x")]))
    batch_uploads.refuse_image_field(FormData([("images", "x")]))


# -- a re-run's method ------------------------------------------------------------------------------------


@pytest.fixture
def _cnn_and_reference() -> None:
    for name in ("cnn", "unet-bins", "unet-bins-reference"):
        if not method_available(name):
            pytest.fail(f"the bundled {name} weights are missing from the checkout")


def rerun(
    job: Job, method: str | None = None, new_reference: bool = False, **fields: str
) -> tuple[str, dict[str, Any]]:
    form = FormData(list(fields.items()))
    info, params = method_choice.choose_for_rerun(job, method, form, None, get_settings(), new_reference)
    return info.name, params


@pytest.mark.usefixtures("_cnn_and_reference")
def test_a_rerun_keeps_the_method_and_the_options_the_new_method_takes() -> None:
    job = Job(method="unet-bins", params={"vividness": 0.5, "hints": []}, reference_image_id=None)
    assert rerun(job)[0] == "unet-bins" and rerun(job)[1]["vividness"] == 0.5
    assert rerun(job, vividness="0.9")[1]["vividness"] == 0.9
    # a new reference and no method: the reference method, keeping the vividness
    name, params = rerun(job, new_reference=True)
    assert name == "unet-bins-reference" and params["vividness"] == 0.5
    assert rerun(job, "cnn") == ("cnn", {})
    assert rerun(job, fix_preview="true")[0] == "unet-bins"  # a field of the re-run, not an option


@pytest.mark.usefixtures("_cnn_and_reference")
def test_a_rerun_refuses_a_reference_missing_or_one_too_many() -> None:
    plain = Job(method="cnn", params={}, reference_image_id=None)
    with pytest.raises(UserError, match="colors a photo from a colour reference image: upload one"):
        rerun(plain, "unet-bins-reference")
    with pytest.raises(UserError, match=r"^method 'cnn' takes no reference image$"):
        rerun(plain, "cnn", new_reference=True)
    guided = Job(method="unet-bins-reference", params={}, reference_image_id="r" * 32)
    with pytest.raises(UserError, match="takes no reference image and this job has one"):
        rerun(guided, "cnn")
    assert rerun(guided)[0] == "unet-bins-reference"
    twice = FormData([("fix_preview", "true"), ("fix_preview", "true")])
    with pytest.raises(UserError, match="`fix_preview` came more than once"):
        method_choice.choose_for_rerun(plain, None, twice, None, get_settings(), False)


# -- a comparison's methods -------------------------------------------------------------------------------


@pytest.mark.usefixtures("_cnn_and_reference")
def test_a_comparison_form_takes_methods_and_no_options() -> None:
    def compare(methods: str | None, *fields: tuple[str, str]) -> list[str]:
        chosen = method_choice.choose_for_comparison(FormData(list(fields)), methods, get_settings(), False)
        return [m.name for m in chosen]

    assert compare(" cnn, unet-bins ,cnn") == ["cnn", "unet-bins"]
    assert "unet-bins-reference" not in compare(None)
    for fields, message in [
        ((("webhook", "http://example.org"),), "takes no `webhook`"),
        ((("vividness", "1"),), "takes no 'vividness': for options"),
        ((("methods", "cnn"), ("methods", "gan")), "`methods` came 2 times"),
    ]:
        with pytest.raises(UserError, match=message):
            compare("cnn", *fields)
    with pytest.raises(UserError, match="`methods` names no method"):
        compare(" , ")

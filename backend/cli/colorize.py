"""`colorlab colorize IN... -o OUTDIR --method M`: colorize files, folders and globs from the command line."""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from backend.cli import FiniteRange, Refused, checked_device, read_text
from backend.provenance import SOFTWARE  # every output says it (an earlier result may be replaced)

if TYPE_CHECKING:
    import numpy as np

    from backend.images import DecodedImage

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """Files as given, folders' image files (recursive, sorted, no hidden ones), globs expanded; duplicates
    removed."""
    from backend.stored_images import is_junk  # hidden files and __MACOSX, as the web app leaves them out

    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            images = (p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            found += sorted(p for p in images if not is_junk(p.relative_to(path).as_posix()))
        elif path.is_file():
            found.append(path)
        elif path.exists():  # reading a pipe or a device would wait for a writer that may never come
            raise click.ClickException(f"{item}: not a regular file or folder")
        elif any(ch in item for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matches:
                raise click.ClickException(f"no file matches {item!r}")
            found += [m for m in matches if m.is_file()]
        else:
            raise click.ClickException(f"no such file or folder: {item}")
    seen: set[Path] = set()
    unique: list[Path] = []
    for path in found:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append(path)
    return unique


NAME_MAX = 255  # bytes in a file name (Linux, macOS): an archive's long names come close


def fitted(stem: str, suffix: str) -> str:
    """``stem + suffix``, the stem shortened as much as the name needs to fit in NAME_MAX bytes."""
    while stem and len(os.fsencode(stem + suffix)) > NAME_MAX:
        stem = stem[:-1]
    return stem + suffix


def write_whole(target: Path, data: bytes) -> None:
    """Write ``data`` through a temporary file beside ``target``: an interrupted run (Ctrl+C, a full disk)
    never leaves a half-written photo under the final name."""
    part = target.with_name(fitted(f".{target.name}", ".part"))
    try:
        part.write_bytes(data)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def output_names(paths: list[Path], outdir: Path, fmt: str) -> dict[Path, Path]:
    """One output file per input, ``<stem>.<fmt>``, made unique (photo-2.png, ...): never one of the inputs
    themselves (writing into the input folder must not replace a photo with its colorization), nor a file
    already there that is not an earlier ColorLab result (a re-run replaces its own results, never a
    photo of the user's that happens to have the name)."""
    from backend.images import made_by

    inputs = {p.resolve() for p in paths}
    names: dict[Path, Path] = {}
    taken: set[Path] = set()

    def free(target: Path) -> bool:
        resolved = target.resolve()
        if resolved in taken or resolved in inputs:
            return False
        return not target.exists() or (target.is_file() and made_by(target, SOFTWARE))

    for path in paths:
        target, k = outdir / fitted(path.stem, f".{fmt}"), 2
        while not free(target):
            target, k = outdir / fitted(path.stem, f"-{k}.{fmt}"), k + 1
        names[path] = target
        taken.add(target.resolve())
    return names


def read_photo(path: Path) -> DecodedImage:
    """An image file read as uploads are (EXIF orientation applied, ICC profile converted to sRGB, a 16-bit
    gray scan's levels kept), with its metadata; ValueError when it is not an image."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    from backend import png16
    from backend.images import decode_opened, decode_rgb16_png

    if path.exists() and not path.is_file():  # a pipe or device: opening it would wait for a writer
        raise ValueError(f"{path}: not a regular file")
    try:
        with path.open("rb") as file:  # a 16-bit RGB PNG is read as uploads are: rounded, not truncated
            head = file.read(33)
        if png16.is_rgb16(head):
            width, height = png16.size_of(head)
            limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)  # Pillow's hard limit, as for an 8-bit file
            if width * height > limit:
                raise ValueError(f"{width}×{height} pixels is more than {limit:,}")
            if (decoded := decode_rgb16_png(path.read_bytes())) is not None:
                return decoded
        # A local file is the user's own (an archive scan may pass 89 MP): no decompression-bomb warning;
        # PIL's hard limit (twice that) still refuses.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                # As uploads are read: a plain convert("RGB") turns a 16-bit scan white and drops alpha.
                img.load()
                return decode_opened(img)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc.__class__.__name__}: {exc})") from None
    except MemoryError:
        raise ValueError(f"{path}: too large to read in this machine's memory") from None


@click.command("colorize")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--out",
    "outdir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder: one <name>.png (or .jpg) per input (created if needed).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "jpg"]),
    default="png",
    show_default=True,
    help="Output format: png (lossless) or jpg (much smaller).",
)
@click.option(
    "--quality",
    type=click.IntRange(1, 100),
    default=90,
    show_default=True,
    help="JPEG quality (--format jpg).",
)
@click.option(
    "--method",
    "-m",
    default=None,
    help="Colorization method (see /methods). Default: unet-bins; with --reference, unet-bins-reference.",
)
@click.option(
    "--vividness",
    type=FiniteRange(0.0, 1.0),
    default=None,
    help="unet-bins: from safer, muted colours (0) to more vivid ones (1); default 0.5.",
)
@click.option(
    "--hints",
    default=None,
    metavar="JSON|@FILE",
    help='unet-bins: colour hints, a JSON list like \'[{"x": 0.5, "y": 0.2, "color": "#3a7bd5"}]\' (x, y '
    "relative to each photo), or @file.json holding one.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Photos per forward pass for batchable (feed-forward) methods.",
)
@click.option(
    "--reference",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Color reference image, for methods that need one.",
)
@click.option("--option", "options", multiple=True, metavar="NAME=VALUE", help="Method option (repeatable).")
@click.option("--device", default="cpu", show_default=True, callback=checked_device, help="Torch device.")
@click.option(
    "--weights-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Weights folder (default: the WEIGHTS_DIR setting).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def colorize(
    inputs: tuple[str, ...],
    outdir: Path,
    fmt: str,
    quality: int,
    method: str | None,
    vividness: float | None,
    hints: str | None,
    batch_size: int,
    reference: Path | None,
    options: tuple[str, ...],
    device: str,
    weights_dir: Path | None,
    no_progress: bool,
) -> None:
    """Colorize the photos INPUTS (files, folders, globs) into OUTDIR as full-resolution PNGs (or JPEGs)."""
    from tqdm import tqdm

    from backend.config import get_settings
    from backend.images import PhotoMetadata, encode_jpeg, encode_png
    from worker.colorizers import methods
    from worker.colorizers.loading import get_colorizer
    from worker.colorizers.method_info import ParamError, Unavailable, validate_params
    from worker.colorizers.pipeline import predict_many

    info = (
        methods.get(method)
        if method is not None
        else methods.default_method(with_reference=reference is not None)
    )
    if info is None:
        raise Refused(f"unknown method {method!r}; choose from {', '.join(m.name for m in methods.METHODS)}")
    method = info.name
    raw: dict[str, Any] = {}  # option strings, and --vividness as a float
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise Refused(f"--option needs NAME=VALUE, got {item!r}")
        raw[key.strip()] = value
    if vividness is not None:
        raw["vividness"] = vividness
    if hints is not None:
        if hints.startswith("@"):
            hints = read_text(Path(hints[1:]), "--hints")
        raw["hints"] = hints
    try:
        params = validate_params(info, raw, methods.METHODS)
    except ParamError as exc:
        raise Refused(str(exc)) from None
    if info.needs_reference and reference is None:
        raise Refused(f"method {method!r} needs --reference IMAGE")
    if reference is not None and not info.needs_reference:
        raise Refused(
            f"method {method!r} takes no reference; drop --reference or choose "
            f"{', '.join(m.name for m in methods.METHODS if m.needs_reference)}"
        )
    ref_rgb = None
    if reference is not None:
        try:
            ref_photo = read_photo(reference)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        if not ref_photo.is_color:  # as uploads: a gray reference has no colours to give
            raise click.ClickException(f"{reference}: the reference image has no colour: give a colour photo")
        ref_rgb = ref_photo.rgb
    paths = expand_inputs(inputs)
    # Results of an earlier run into a folder among the inputs are not inputs: they are replaced instead
    if outdir.is_dir():
        from backend.images import made_by

        into = outdir.resolve()
        paths = [p for p in paths if not (p.resolve().is_relative_to(into) and made_by(p, SOFTWARE))]
    if not paths:
        raise click.ClickException("no input images")
    folder = weights_dir or get_settings().weights_dir
    try:
        colorizer = get_colorizer(method, folder, device)
    except Unavailable as exc:
        raise click.ClickException(str(exc)) from None
    made_outdir = not outdir.exists()
    outdir.mkdir(parents=True, exist_ok=True)
    batch = batch_size if info.batchable else 1
    failures: list[str] = []
    bar = tqdm(total=len(paths), unit="photo", disable=no_progress, desc=method)
    names = output_names(paths, outdir, fmt)
    for start in range(0, len(paths), batch):
        chunk: list[Path] = []
        planes: list[np.ndarray] = []
        records: list[PhotoMetadata] = []
        depths: list[int] = []
        for path in paths[start : start + batch]:
            try:
                photo = read_photo(path)
                planes.append(photo.lightness())  # a 16-bit scan's from its own levels
                records.append(photo.metadata)  # written into the result: resolution, EXIF, XMP
                depths.append(photo.bits if fmt == "png" else 8)  # 16-bit PNG for a 16-bit scan; JPEG: 8
                chunk.append(path)
                del photo  # its pixels go: only the L plane is used
            except ValueError as exc:
                failures.append(str(exc))
                tqdm.write(f"skipped: {exc}", file=sys.stderr)
                bar.update(1)
        if not chunk:
            continue
        references = [ref_rgb] * len(planes) if info.needs_reference else None
        results = predict_many(
            colorizer, planes, params=params, references=references, batch_size=batch, depths=depths
        )
        for path, rgb, metadata in zip(chunk, results, records, strict=True):
            data = (
                encode_jpeg(rgb, quality, metadata=metadata, colorized_by=method)
                if fmt == "jpg"
                else encode_png(rgb, metadata=metadata, colorized_by=method)
            )
            write_whole(names[path], data)
            bar.update(1)
    bar.close()
    done = len(paths) - len(failures)
    if done == 0 and made_outdir:
        outdir.rmdir()  # nothing was written: leave no empty folder behind
    click.echo(f"{done} photo(s) colorized with {method} into {outdir}")
    if failures:
        raise click.ClickException(f"{len(failures)} file(s) could not be read: " + "; ".join(failures))

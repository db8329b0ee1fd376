"""`colorlab colorize IN... -o OUTDIR --method M`: colorize files, folders and globs from the command line."""

from __future__ import annotations

import glob
import hashlib
import io
import mmap
import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

import click

from backend import tiff_pages
from backend.cli import (
    FilePath,
    FiniteRange,
    Refused,
    checked_device,
    default_device,
    read_text,
    use_threads,
)
from backend.provenance import SOFTWARE

if TYPE_CHECKING:
    import numpy as np

    from backend.images import DecodedImage

# What a folder's files are taken as photos by (a file named directly is tried whatever its name): JPEG's
# aliases (.jfif from Windows, .jpe), TIFF, JPEG 2000 and PNM as scanners and archives write them, AVIF.
IMAGE_SUFFIXES = (
    ".jpg", ".jpeg", ".jpe", ".jfif", ".jif", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".avif",
    ".jp2", ".j2k", ".pbm", ".pgm", ".ppm", ".pnm",
)  # fmt: skip
SKIPPED_SHOWN = 5  # names listed in the "skipped" line; the rest are counted


class Photo(NamedTuple):
    """An input photo and the folder its result goes in, relative to OUTDIR ("" for OUTDIR itself)."""

    path: Path
    folder: PurePath
    page: int = 0  # 1, 2, ...: a page of a multi-page TIFF (:func:`photo_pages`); 0: the whole file
    directory: int = 0  # that page's directory in the file (backend.tiff_pages)

    @property
    def stem(self) -> str:
        """The name its result is given, before the suffix: the file's, a page's with its number."""
        return f"{self.path.stem}-page{self.page}" if self.page else self.path.stem


class Inputs(NamedTuple):
    photos: list[Photo]
    skipped: list[Path]  # files in the folders given that are not photos by their name
    unreadable: list[str]  # folders that could not be listed, "PATH: REASON" (their photos are missing)


def _glob_base(pattern: str) -> Path:
    """The folders a glob names before its first wildcard (``box`` of ``box/*/photo.jpg``)."""
    fixed = []
    for part in Path(pattern).parts:
        if any(ch in part for ch in "*?["):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path()


def _folder_within(path: Path, base: Path) -> PurePath:
    """``path``'s folder relative to ``base``; none (OUTDIR itself) where it is not below it."""
    try:
        folder = path.parent.relative_to(base)
    except ValueError:
        return PurePath()
    return PurePath() if ".." in folder.parts else PurePath(folder)


def expand_inputs(inputs: Iterable[str], outdir: Path) -> Inputs:
    """Files as given, folders' photos (recursive, sorted, no hidden ones), globs expanded; duplicates
    removed, the first kept. Where each result goes, relative to OUTDIR: a file's in OUTDIR; a folder's tree
    mirrored, in OUTDIR itself when it is the only folder given (or is OUTDIR), else in OUTDIR/<its name>/
    (box/1962 box/1963: 1962/photo.png, 1963/photo.png, so that two folders' IMG_0001.jpg never meet); a
    glob's in the folders its wildcards matched (box/*/photo.jpg: 1962/photo.png)."""
    from backend.stored_images import is_junk  # hidden files and __MACOSX, as the web app leaves them out
    from worker.colorizers.folders import files_under

    found: list[Photo] = []
    skipped: list[Path] = []
    unreadable: list[str] = []
    into = outdir.resolve()
    items = list(inputs)
    folders = {Path(item).resolve() for item in items if Path(item).is_dir()}
    for item in items:
        path = Path(item)
        if path.is_dir():
            whole = path.resolve()
            alone = len(folders) == 1 or whole == into
            top = PurePath() if alone else PurePath(whole.name)  # the root "/" has no name: OUTDIR
            listed, cannot = files_under(path)
            unreadable += cannot
            for file in (p for p in listed if not is_junk(p.relative_to(path).as_posix())):
                if file.suffix.lower() in IMAGE_SUFFIXES:
                    found.append(Photo(file, top / file.parent.relative_to(path)))
                else:
                    skipped.append(file)
        elif path.is_file():
            found.append(Photo(path, PurePath()))
        elif path.exists():  # reading a pipe or a device would wait for a writer that may never come
            raise click.ClickException(f"{item}: not a regular file or folder")
        elif any(ch in item for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matches:
                raise click.ClickException(f"no file matches {item!r}")
            base = _glob_base(item)
            found += [Photo(m, _folder_within(m, base)) for m in matches if m.is_file()]
        else:
            raise click.ClickException(f"no such file or folder: {item}")
    seen: set[Path] = set()
    unique: list[Photo] = []
    for photo in found:
        if photo.path.resolve() not in seen:
            seen.add(photo.path.resolve())
            unique.append(photo)
    others: list[Path] = []  # each once, and none that is an input too (named directly as well)
    for file in skipped:
        if file.resolve() not in seen:
            seen.add(file.resolve())
            others.append(file)
    return Inputs(unique, others, unreadable)


@contextmanager
def mapped(file: BinaryIO) -> Iterator[tiff_pages.Buffer]:
    """An open file's bytes mapped into memory, not read (b"" for an empty file or one that cannot be
    mapped)."""
    try:
        view = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    except (ValueError, OSError):
        yield b""
        return
    with view:
        yield view


def photo_pages(photos: list[Photo]) -> list[Photo]:
    """The photos with each multi-page TIFF replaced by its pages, a photo each (scan.tif: scan-page1.png,
    scan-page2.png, ...; previews and masks are not pages: :mod:`backend.tiff_pages`)."""
    out: list[Photo] = []
    for photo in photos:
        found: list[int] = []
        try:
            with photo.path.open("rb") as file, mapped(file) as data:
                found = tiff_pages.pages(data)
        except OSError:  # unreadable: read_photo says why when its turn comes
            pass
        if len(found) < 2:
            out.append(photo)
            continue
        out += [photo._replace(page=k, directory=d) for k, d in enumerate(found, start=1)]
    return out


def skipped_line(skipped: list[Path]) -> str:
    """What a folder held that was not taken, in one line."""
    shown = [f"{p} (no extension)" if not p.suffix else str(p) for p in skipped[:SKIPPED_SHOWN]]
    more = f" and {len(skipped) - SKIPPED_SHOWN} more" if len(skipped) > SKIPPED_SHOWN else ""
    return (
        f"skipped {len(skipped)} file(s) that are not photos by their name: {', '.join(shown)}{more} — name "
        "them directly to try them"
    )


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


# Every result records which file it was made from (``source`` of the encoders, read back by
# images.result_marks), so that a re-run replaces only its own photo's result. The record is a digest of the
# path, not the path: a result is shared, and a path tells where the archive lies and whose account it is in.
def source_record(path: Path, page: int = 0) -> str:
    """How a result records its photo: the first 16 hex digits of the sha256 of its absolute path (symbolic
    links resolved) and its page, which tells two photos apart without saying where either lies."""
    where = os.fsencode(path.resolve()) + (f"#page{page}".encode() if page else b"")
    return hashlib.sha256(where).hexdigest()[:16]


class Planned(NamedTuple):
    """Where a photo's result is written, the source record it carries, and whether the file there already
    is this photo's result by this method (an earlier run's: ``--skip-existing`` leaves it)."""

    file: Path
    source: str
    done: bool = False


def output_names(photos: list[Photo], outdir: Path, fmt: str, method: str) -> dict[Photo, Planned]:
    """One output file per input, ``<folder>/<stem>.<fmt>`` under ``outdir`` (:func:`expand_inputs`), made
    unique (photo-2.png, ...): never one of the inputs themselves (writing into the input folder must not
    replace a photo with its colorization), nor a file already there that is not an earlier ColorLab result
    of the same photo by the same ``method`` (a re-run replaces its own results, never a photo of the user's
    that happens to have the name, nor the result of another photo of that name or of another method). A
    file where a folder would go makes the folder another name (1962-2)."""
    from backend.images import result_marks
    from backend.provenance import software

    own_mark = software(method)
    inputs = {p.path.resolve() for p in photos}
    names: dict[Photo, Planned] = {}
    taken: set[Path] = set()  # the files planned so far
    folders: dict[PurePath, Path] = {PurePath(): outdir}  # each relative folder's place

    def folder_of(relative: PurePath) -> Path:
        if relative in folders:
            return folders[relative]
        parent = folder_of(relative.parent)
        place, k = parent / relative.name, 2
        while (
            (place.exists() and not place.is_dir()) or place.resolve() in taken or place.resolve() in inputs
        ):
            place, k = parent / fitted(relative.name, f"-{k}"), k + 1
        folders[relative] = place
        return place

    def ours(target: Path, source: str) -> bool:
        marks = result_marks(target) if target.is_file() else None
        return marks is not None and marks.software == own_mark and marks.source == source

    def free(target: Path, source: str) -> bool:
        resolved = target.resolve()
        if resolved in taken or resolved in inputs or target in folders.values():
            return False
        return not target.exists() or ours(target, source)

    for photo in photos:
        folder, source = folder_of(photo.folder), source_record(photo.path, photo.page)
        target, k = folder / fitted(photo.stem, f".{fmt}"), 2
        while not free(target, source):
            target, k = folder / fitted(photo.stem, f"-{k}.{fmt}"), k + 1
        names[photo] = Planned(target, source, done=target.exists())
        taken.add(target.resolve())
    return names


def unavailable_here(reason: str, folder: Path, named: bool) -> str:
    """Why a method cannot run, with the folder its weights were looked for in (WEIGHTS_DIR is relative to
    the folder colorlab runs in); with --weights-dir, its fetch hint fetches into that folder."""
    if named:
        hint = re.compile(r"`colorlab weights fetch ([^`]+)`")
        reason = hint.sub(lambda m: f"`colorlab weights fetch {m[1]} --weights-dir {folder}`", reason)
    return f"{reason} (weights looked for in {folder.resolve()})"


def writable_outdir(outdir: Path) -> None:
    """Make OUTDIR (and its parents) and check that a file can be written in it, before any photo is
    colorized: a read-only folder is said at once, not after the first batch's minutes."""
    import tempfile

    try:
        outdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=outdir):
            pass
    except OSError as exc:
        raise click.ClickException(f"cannot write into {outdir}: {exc.strerror or exc}") from None


def read_photo(path: Path, directory: int = 0) -> DecodedImage:
    """An image file read as uploads are (EXIF orientation applied, ICC profile converted to sRGB, a 16-bit
    gray scan's levels kept), with its metadata; ValueError when it is not an image, or is more than one
    photo (a multi-page TIFF, an animation). ``directory``: the page of a multi-page TIFF to read
    (:func:`photo_pages`)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    from backend import png16
    from backend.images import decode_opened, decode_rgb16_png, more_than_one_photo

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
            # From an open file, as uploads from their bytes: opened by its path, Pillow memory-maps an
            # uncompressed TIFF and lays its pixels out in the size already turned by its orientation 5-8
            # (a scrambled photo), and the file stays unread into memory (a large scan)
            if directory:  # a page: the whole file is read, the page's own file made of it
                with path.open("rb") as file, mapped(file) as data:
                    page = tiff_pages.page(data, directory)
                with Image.open(io.BytesIO(page)) as img:
                    img.load()
                    return decode_opened(img)
            with path.open("rb") as file, Image.open(file) as img, mapped(file) as data:
                several = more_than_one_photo(img, data)
                if several is None:
                    # As uploads are read: a plain convert("RGB") turns a 16-bit scan white and drops alpha.
                    img.load()
                    return decode_opened(img)
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file Pillow can read") from None
    except OSError as exc:  # a permission, a broken disk: its own words, once
        raise ValueError(f"{path}: {exc.strerror or exc}".rstrip()) from None
    except (ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from None
    except MemoryError:
        raise ValueError(f"{path}: too large to read in this machine's memory") from None
    raise ValueError(f"{path}: {several}")


@click.command("colorize")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--out",
    "outdir",
    required=True,
    type=FilePath(file_okay=False, path_type=Path),
    help="Output folder (created if needed): one <name>.png (or .jpg) per photo, a folder's subfolders kept.",
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
    help="Colorization method (`colorlab methods` lists them with their options). Default: unet-bins; with "
    "--reference, unet-bins-reference.",
)
@click.option(
    "--vividness",
    type=FiniteRange(0.0, 1.0),
    default=None,
    help="unet-bins and unet-bins-reference: from safer, muted colours (0) to more vivid ones (1); default "
    "0.5.",
)
@click.option(
    "--hints",
    default=None,
    metavar="JSON|@FILE",
    help="unet-bins and unet-bins-reference: colour hints, a JSON list like "
    '\'[{"x": 0.5, "y": 0.2, "color": "#3a7bd5"}]\' (x, y relative to each photo), or @file.json '
    "holding one.",
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
    type=FilePath(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Color reference image, for methods that need one.",
)
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="NAME=VALUE",
    help="Method option (repeatable); `colorlab methods NAME` lists a method's.",
)
@click.option(
    "--device",
    default=None,
    callback=checked_device,
    help="Torch device: auto (CUDA when present), cpu, cuda, cuda:0, ... Default: the DEVICE setting.",
)
@click.option(
    "--weights-dir",
    type=FilePath(file_okay=False, path_type=Path),
    default=None,
    help="Weights folder (default: the WEIGHTS_DIR setting).",
)
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Leave the photos whose result by this method is already in OUTDIR (an interrupted run goes on).",
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
    device: str | None,
    weights_dir: Path | None,
    skip_existing: bool,
    no_progress: bool,
) -> None:
    """Colorize the photos INPUTS (files, folders, globs) into OUTDIR as full-resolution PNGs (or JPEGs).

    A file's result is OUTDIR/<name>.png. A folder's tree is mirrored: given one folder, box (holding
    1962/photo.jpg), its results go in OUTDIR (OUTDIR/1962/photo.png); given several, each in a folder of
    its name (box1 box2: OUTDIR/box1/IMG_0001.png, OUTDIR/box2/IMG_0001.png). A glob keeps the folders its
    wildcards matched (box/*/*.jpg: OUTDIR/1962/photo.png).
    A folder's files are taken by their extension (.jpg .jpeg .jfif .jpe .png .tif .tiff .webp .bmp .gif
    .avif .jp2 .pgm ...); the others are listed as skipped: name them directly to try them.

    Each result is marked as ColorLab's and records the photo it was made from. A re-run replaces only its
    own photo's earlier result by the same method (give the same INPUTS to replace them in place;
    --skip-existing to leave them); any other file of that name (a photo of yours, one of the inputs,
    another photo's or another method's result) is kept and the new result is named photo-2.png.
    A multi-page TIFF gives one result per page (scan-page1.png, ...).
    """
    from tqdm import tqdm

    from backend.config import get_settings
    from backend.images import PhotoMetadata, encode_jpeg, encode_png
    from worker.colorizers import methods
    from worker.colorizers.base import Progress
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
    photos, skipped, unreadable = expand_inputs(inputs, outdir)
    for folder_error in unreadable:  # its photos are missing: said here, and the run exits 1
        click.echo(f"cannot read the folder {folder_error}: its photos are left out", err=True)
    # Results of an earlier run into a folder among the inputs are not inputs: they are replaced instead
    if outdir.is_dir():
        from backend.images import made_by

        into = outdir.resolve()
        photos = [
            p for p in photos if not (p.path.resolve().is_relative_to(into) and made_by(p.path, SOFTWARE))
        ]
    if not photos:
        why = [skipped_line(skipped)] if skipped else []
        why += [f"{len(unreadable)} folder(s) could not be read"] if unreadable else []
        raise click.ClickException("; ".join(["no input images", *why]))
    if skipped:
        click.echo(skipped_line(skipped), err=True)
    photos = photo_pages(photos)
    folder = weights_dir or get_settings().weights_dir
    device = default_device(device)  # the worker's: auto is CUDA when present
    use_threads()
    try:
        colorizer = get_colorizer(method, folder, device)
    except Unavailable as exc:
        raise click.ClickException(unavailable_here(str(exc), folder, weights_dir is not None)) from None
    made_outdir = not outdir.exists()
    writable_outdir(outdir)
    batch = batch_size if info.batchable else 1
    failures: list[str] = [f"the folder {error}" for error in unreadable]
    names = output_names(photos, outdir, fmt, method)
    if skip_existing and (left := sum(1 for p in photos if names[p].done)):
        photos = [p for p in photos if not names[p].done]
        click.echo(f"{left} photo(s) already colorized with {method} in {outdir}: left as they are", err=True)
    bar = tqdm(total=len(photos), unit="photo", disable=no_progress, desc=method)

    def step(report: Progress) -> None:  # an iterative method's minutes per photo, followed on the bar
        bar.set_postfix_str(
            f"iteration {report.step} of {report.total}" if report.total else report.message, refresh=True
        )

    inner = step if info.iterative and not no_progress else None
    written = 0
    try:
        for start in range(0, len(photos), batch):
            chunk: list[Photo] = []
            planes: list[np.ndarray] = []
            records: list[PhotoMetadata] = []
            depths: list[int] = []
            for wanted in photos[start : start + batch]:
                try:
                    photo = read_photo(wanted.path, wanted.directory)
                    planes.append(photo.lightness())  # a 16-bit scan's from its own levels
                    records.append(photo.metadata)  # written into the result: resolution, EXIF, XMP
                    depths.append(photo.bits if fmt == "png" else 8)  # 16-bit PNG of a 16-bit scan
                    chunk.append(wanted)
                    del photo  # its pixels go: only the L plane is used
                except ValueError as exc:
                    failures.append(str(exc))
                    tqdm.write(f"skipped: {exc}", file=sys.stderr)
                    bar.update(1)
            if not chunk:
                continue
            references = [ref_rgb] * len(planes) if info.needs_reference else None
            results = predict_many(
                colorizer,
                planes,
                params=params,
                references=references,
                batch_size=batch,
                depths=depths,
                progress=inner,
            )
            for wanted, rgb, metadata in zip(chunk, results, records, strict=True):
                plan = names[wanted]
                data = (
                    encode_jpeg(rgb, quality, metadata=metadata, colorized_by=method, source=plan.source)
                    if fmt == "jpg"
                    else encode_png(rgb, metadata=metadata, colorized_by=method, source=plan.source)
                )
                try:  # a folder's subfolder is made when it has a photo
                    plan.file.parent.mkdir(parents=True, exist_ok=True)
                    write_whole(plan.file, data)
                except OSError as exc:  # a full disk, a folder made read-only meanwhile: stop, saying where
                    raise click.ClickException(
                        f"cannot write {plan.file}: {exc.strerror or exc} ({written} photo(s) written before)"
                    ) from None
                written += 1
                bar.update(1)
    except KeyboardInterrupt:  # Ctrl+C: what is written is whole (write_whole); say how far it got
        bar.close()
        click.echo(
            f"interrupted: {written} of {len(photos)} photo(s) written into {outdir}; the same command with "
            "--skip-existing goes on from there",
            err=True,
        )
        sys.exit(130)
    bar.close()
    if written == 0 and made_outdir:
        outdir.rmdir()  # nothing was written: leave no empty folder behind
    click.echo(f"{written} photo(s) colorized with {method} into {outdir}")
    if failures:  # each was said as it came: the last line counts them
        shown = "; ".join(failures[:SKIPPED_SHOWN])
        more = f"; and {len(failures) - SKIPPED_SHOWN} more (above)" if len(failures) > SKIPPED_SHOWN else ""
        raise click.ClickException(f"{len(failures)} could not be used: {shown}{more}")

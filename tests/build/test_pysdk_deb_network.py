"""The 3.14/3.15 SDKs from the real pinned libpython3.X-dev packages and the derived Windows
pyconfig.h: the win64 layout of the public structures an extension compiles against must be
the one CPython 3.13's own PC/pyconfig.h.in gives, except where the headers themselves changed
it. The layout is read back from a DLL zig builds against each SDK (no runtime is needed).
Needs the Debian mirror apt is configured with (and deb-src for the 3.13 orig tarball), ziglang."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pefile
import pytest

from pillow_variants.build import pysdk
from pillow_variants.toolchains.zig import zig_command

pytestmark = pytest.mark.network

#: (name, C expression): what must hold on win64 for an extension and the DLL to agree.
LAYOUT = [
    ("sizeof(long)", "sizeof(long)"),
    ("SIZEOF_VOID_P", "SIZEOF_VOID_P"),
    ("SIZEOF_LONG", "SIZEOF_LONG"),
    ("SIZEOF_SIZE_T", "SIZEOF_SIZE_T"),
    ("SIZEOF_WCHAR_T", "SIZEOF_WCHAR_T"),
    ("SIZEOF_INT", "SIZEOF_INT"),
    ("SIZEOF_LONG_LONG", "SIZEOF_LONG_LONG"),
    ("PyObject", "sizeof(PyObject)"),
    ("PyVarObject", "sizeof(PyVarObject)"),
    ("ob_type", "offsetof(PyObject, ob_type)"),
    ("PyTypeObject", "sizeof(PyTypeObject)"),
    ("tp_name", "offsetof(PyTypeObject, tp_name)"),
    ("tp_basicsize", "offsetof(PyTypeObject, tp_basicsize)"),
    ("tp_dealloc", "offsetof(PyTypeObject, tp_dealloc)"),
    ("tp_as_number", "offsetof(PyTypeObject, tp_as_number)"),
    ("tp_flags", "offsetof(PyTypeObject, tp_flags)"),
    ("tp_doc", "offsetof(PyTypeObject, tp_doc)"),
    ("tp_methods", "offsetof(PyTypeObject, tp_methods)"),
    ("tp_new", "offsetof(PyTypeObject, tp_new)"),
    ("tp_free", "offsetof(PyTypeObject, tp_free)"),
    ("tp_finalize", "offsetof(PyTypeObject, tp_finalize)"),
    ("tp_vectorcall", "offsetof(PyTypeObject, tp_vectorcall)"),
    ("PyMethodDef", "sizeof(PyMethodDef)"),
    ("PyMemberDef", "sizeof(PyMemberDef)"),
    ("PyGetSetDef", "sizeof(PyGetSetDef)"),
    ("PyModuleDef", "sizeof(PyModuleDef)"),
    ("Py_buffer", "sizeof(Py_buffer)"),
    ("PyBufferProcs", "sizeof(PyBufferProcs)"),
    ("PyNumberMethods", "sizeof(PyNumberMethods)"),
    ("PyType_Spec", "sizeof(PyType_Spec)"),
]


def _layout(sdk: pysdk.WindowsSDK, tmp_path: Path) -> dict[str, int]:
    """Each LAYOUT value as zig compiles it for x86_64-windows against ``sdk``'s headers."""
    values = ",\n    ".join(expr for _, expr in LAYOUT)
    src = tmp_path / f"layout{sdk.nodot}.c"
    src.write_text(
        "#include <Python.h>\n#include <stddef.h>\n"
        "__declspec(dllexport) const unsigned long long pv_layout[] = {\n"
        f"    {values}\n}};\n"
    )
    dll = tmp_path / f"layout{sdk.nodot}.dll"
    cmd = zig_command() + ["cc", "-target", "x86_64-windows-gnu", "-shared", "-O0"]
    cmd += [f"-I{d}" for d in sdk.include_dirs] + ["-o", str(dll), str(src)]
    subprocess.run(cmd, check=True, capture_output=True)
    pe = pefile.PE(str(dll))
    sym = next(s for s in pe.DIRECTORY_ENTRY_EXPORT.symbols if s.name == b"pv_layout")
    data = pe.get_data(sym.address, 8 * len(LAYOUT))
    return dict(zip((n for n, _ in LAYOUT), struct.unpack(f"<{len(LAYOUT)}Q", data), strict=True))


@pytest.mark.parametrize("ft", [False, True], ids=["gil", "free-threaded"])
def test_derived_sdks_have_313s_win64_layout(ft: bool, cache: Path, tmp_path: Path) -> None:
    t = "t" if ft else ""
    ref = _layout(pysdk.prepare_sdk(f"3.13{t}", cache_dir=cache), tmp_path)
    # what win64 (LLP64) and the build's PyObject header must give
    assert ref["sizeof(long)"] == ref["SIZEOF_LONG"] == 4
    assert ref["SIZEOF_VOID_P"] == ref["SIZEOF_SIZE_T"] == ref["SIZEOF_LONG_LONG"] == 8
    assert ref["PyObject"] == (32 if ft else 16)  # ob_tid, ob_ref_local/shared… when ft
    for minor in ("3.14", "3.15"):
        sdk = pysdk.prepare_sdk(f"{minor}{t}", cache_dir=cache)
        assert sdk.sources["headers"]["kind"] == "debian-binary"
        assert sdk.sources["headers"]["pyconfig"]["inferred"] is True
        got = _layout(sdk, tmp_path)
        diff = {k: (ref[k], got[k]) for k in ref if ref[k] != got[k]}
        if minor == "3.15":  # its cpython/object.h adds _tp_iteritem after the public slots
            assert diff == {"PyTypeObject": (ref["PyTypeObject"], ref["PyTypeObject"] + 8)}
        else:
            assert diff == {}

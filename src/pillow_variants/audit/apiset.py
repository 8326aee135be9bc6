"""API set names (api-ms-win-*, ext-ms-*): recognise them and read apisetschema.dll's map.

Windows never looks for an API set on disk: the loader looks the name up in the API set schema
(the ``.apiset`` section of apisetschema.dll, mapped into every process) and loads the host DLL
it names. The lookup ignores the last ``-<n>`` of the name (the minor version), so
``api-ms-win-core-file-l1-2-4`` and ``api-ms-win-core-file-l1-2-0`` share one entry.

Schema version 6 (Windows 10 and later), all offsets relative to the start of the section::

    namespace: Version, Size, Flags, Count, EntryOffset, HashOffset, HashFactor   (7 x u32)
    entry:     Flags, NameOffset, NameLength, HashedLength, ValueOffset, ValueCount (6 x u32)
    value:     Flags, NameOffset, NameLength, ValueOffset, ValueLength             (5 x u32)

Names are UTF-16LE without terminator. A value with a non-empty name is an exception: the
importing module of that name gets that host instead of the default one (value with no name).
"""

from __future__ import annotations

import struct

from pillow_variants.errors import UserError

APISET_PREFIXES = ("api-", "ext-")
SCHEMA_VERSION = 6
_NAMESPACE = struct.Struct("<7I")
_ENTRY = struct.Struct("<6I")
_VALUE = struct.Struct("<5I")


class ApiSetSchemaError(UserError):
    """apisetschema.dll's .apiset section is missing or not a version-6 schema."""


def is_apiset(dll: str) -> bool:
    """True for names the loader resolves through the API set schema rather than the disk."""
    return dll.lower().startswith(APISET_PREFIXES)


def contract_key(dll: str) -> str:
    """The schema lookup key: lower case, no ``.dll``, last ``-<n>`` removed."""
    name = dll.lower()
    if name.endswith(".dll"):
        name = name[:-4]
    head, sep, tail = name.rpartition("-")
    return head if sep and tail.isdigit() else name


def _utf16(blob: bytes, offset: int, length: int) -> str:
    if length == 0:
        return ""
    if offset + length > len(blob) or length % 2:
        raise ApiSetSchemaError(f"string at {offset:#x}+{length} lies outside the schema")
    return blob[offset : offset + length].decode("utf-16-le", errors="replace")


def parse_apiset_schema(blob: bytes) -> dict[str, dict[str, object]]:
    """Map contract key -> {"name": full name, "hosts": [default, ...], "exceptions": {...}}.

    ``hosts`` lists the default host first (empty when the contract has no host on this OS:
    such an API set exists in the schema but resolves to nothing, which the loader treats as a
    missing DLL).
    """
    if len(blob) < _NAMESPACE.size:
        raise ApiSetSchemaError("apiset section is too small for a schema header")
    version, _size, _flags, count, entry_off, _hash_off, _factor = _NAMESPACE.unpack_from(blob)
    if version != SCHEMA_VERSION:
        raise ApiSetSchemaError(f"apiset schema version {version} (only version 6 is supported)")
    if entry_off + count * _ENTRY.size > len(blob):
        raise ApiSetSchemaError(f"{count} apiset entries do not fit in the section")
    out: dict[str, dict[str, object]] = {}
    for i in range(count):
        _eflags, name_off, name_len, _hashed, value_off, value_count = _ENTRY.unpack_from(
            blob, entry_off + i * _ENTRY.size
        )
        name = _utf16(blob, name_off, name_len).lower()
        if value_off + value_count * _VALUE.size > len(blob):
            raise ApiSetSchemaError(f"values of {name} lie outside the schema")
        default: list[str] = []
        exceptions: dict[str, str] = {}
        for j in range(value_count):
            _vflags, importer_off, importer_len, host_off, host_len = _VALUE.unpack_from(
                blob, value_off + j * _VALUE.size
            )
            host = _utf16(blob, host_off, host_len).lower()
            importer = _utf16(blob, importer_off, importer_len).lower()
            if importer:
                exceptions[importer] = host
            elif host:
                default.append(host)
        out[contract_key(name)] = {"name": name, "hosts": default, "exceptions": exceptions}
    return out

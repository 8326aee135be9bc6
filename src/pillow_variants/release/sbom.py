"""CycloneDX 1.6 SBOM of what a variant wheel bundles, from its recipe and build manifest.

The official Pillow wheel carries Pillow's own SBOM; a variant also has to say which library
sources it linked (version, origin, sha256 — or that a local override was used, which nobody
verified), under which licenses, and which patches changed them. Patches are CycloneDX
``pedigree.patches`` entries (type ``unofficial``) that embed the diff itself, so the SBOM alone
is enough to see what was changed; the patch header's Subject/Why become the ``resolves`` text.

The document is deterministic: no timestamp unless ``SOURCE_DATE_EPOCH`` is set, components
sorted, and the serial number derived from the content (a UUIDv5), so two builds from the same
inputs embed identical bytes (see :func:`pillow_variants.wheeltools.embed_provenance`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from importlib import resources
from typing import Any
from urllib.parse import quote

from pillow_variants import __version__
from pillow_variants.errors import UserError
from pillow_variants.recipe.model import Recipe, Source
from pillow_variants.wheeltools import source_date_epoch

SPEC_VERSION = "1.6"
SCHEMA_URL = "http://cyclonedx.org/schema/bom-1.6.schema.json"
#: Property names are namespaced (CycloneDX property taxonomy convention).
PROP = "pillow-variants"


def _licenses_table() -> dict[str, str]:
    data = json.loads(resources.files("pillow_variants").joinpath("data/licenses.json").read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def purl_version(version: str) -> str:
    """A purl version is percent-encoded: ``13.0.0+nanoserver`` → ``13.0.0%2Bnanoserver``."""
    return quote(version, safe=".-_~")


def component_purl(project: str, version: str, url: str = "") -> str:
    purl = f"pkg:generic/{quote(project, safe='.-_~')}@{purl_version(version)}"
    return purl + (f"?download_url={quote(url, safe='')}" if url else "")


def _source_facts(
    component: str, source: Source, manifest: Mapping[str, Any] | None
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(hashes, properties) for a component's source: the build's record wins over the recipe."""
    entry = ((manifest or {}).get("sources") or {}).get(component)
    props: list[dict[str, str]] = []
    if entry is not None:
        if entry.get("local"):
            props.append({"name": f"{PROP}:source", "value": "local override"})
            props.append({"name": f"{PROP}:source-origin", "value": str(entry.get("origin", ""))})
            return [], props
        sha = entry.get("sha256")
        verified = bool(entry.get("verified"))
    else:
        sha = source.sha256 if source.pinned else None
        verified = source.pinned
    props.append(
        {
            "name": f"{PROP}:sha256",
            "value": "verified against the recipe pin" if verified else "unpinned in the recipe",
        }
    )
    hashes = [{"alg": "SHA-256", "content": sha}] if sha else []
    return hashes, props


def _patches(recipe: Recipe, component: str) -> list[dict[str, Any]]:
    """Pedigree patches for a component: the diff embedded, the header as the resolved issue."""
    from pillow_variants.sources.patches import read_patch

    out = []
    for path in recipe.patch_files(component):
        if not path.is_file():
            raise UserError(f"recipe {recipe.name}: patch {path} listed but missing")
        patch = read_patch(path)
        text = base64.b64encode(path.read_bytes()).decode("ascii")
        rel = path.relative_to(recipe.root).as_posix()
        out.append(
            {
                "type": "unofficial",
                "diff": {
                    "text": {"content": text, "contentType": "text/x-diff", "encoding": "base64"},
                    "url": rel,
                },
                "resolves": [
                    {
                        "type": "enhancement",
                        "name": path.name,
                        "description": f"{patch.summary}. Why: {patch.reason}",
                    }
                ],
            }
        )
    return out


def _pedigree(recipe: Recipe, component: str, notes: str = "") -> dict[str, Any] | None:
    pedigree: dict[str, Any] = {}
    patches = _patches(recipe, component)
    if patches:
        pedigree["patches"] = patches
    if notes:
        pedigree["notes"] = notes
    return pedigree or None


def _dependency_component(
    recipe: Recipe, name: str, manifest: Mapping[str, Any] | None, licenses: dict[str, str]
) -> dict[str, Any]:
    dep = recipe.dependencies[name]
    entry = ((manifest or {}).get("sources") or {}).get(name) or {}
    url = "" if entry.get("local") else dep.source.url
    # The version of the tree that was built (a local override may not be the recipe's pin).
    version = entry.get("version") or dep.version
    ref = component_purl(dep.project, version, url)
    hashes, props = _source_facts(name, dep.source, manifest)
    props.append({"name": f"{PROP}:component", "value": name})
    if entry.get("recipe_version"):
        props.append({"name": f"{PROP}:recipe-version", "value": entry["recipe_version"]})
    props += [{"name": f"{PROP}:license-file", "value": f} for f in dep.license_files]
    comp: dict[str, Any] = {
        "bom-ref": ref,
        "type": "library",
        "name": dep.project,
        "version": version,
        "purl": ref,
        "properties": props,
    }
    # A recipe may carry an SPDX expression itself; otherwise the shipped table decides.
    license_expr = getattr(dep, "license", "") or licenses.get(dep.project, "")
    if license_expr:
        comp["licenses"] = [{"expression": license_expr}]
    if hashes:
        comp["hashes"] = hashes
    if url:
        comp["externalReferences"] = [{"type": "distribution", "url": url}]
    edits = sorted({e.file for e in dep.upstream_edits})
    notes = (
        f"Pillow's winbuild applies {len(dep.upstream_edits)} search/replace edit(s) to "
        f"{', '.join(edits)}; the recipe's upstream_edits repeat them."
        if edits
        else ""
    )
    pedigree = _pedigree(recipe, name, notes)
    if pedigree:
        comp["pedigree"] = pedigree
    return comp


def build_sbom(
    recipe: Recipe, manifest: Mapping[str, Any] | None = None, *, epoch: int | None = None
) -> dict[str, Any]:
    """The CycloneDX 1.6 document (a dict) for a wheel built from ``recipe``.

    ``manifest`` is the build manifest: its ``sources`` entries (as written by
    :meth:`pillow_variants.sources.fetch.FetchedSource.manifest_entry`) give the hashes actually
    verified and mark local overrides. ``epoch`` defaults to ``SOURCE_DATE_EPOCH``; without
    either, the document has no timestamp.
    """
    licenses = _licenses_table()
    by_name = {
        name: _dependency_component(recipe, name, manifest, licenses)
        for name, dep in recipe.dependencies.items()
        if dep.in_wheel
    }
    components = sorted(by_name.values(), key=lambda c: (c["name"], c["version"]))
    refs = {name: c["bom-ref"] for name, c in by_name.items()}

    version = recipe.wheel_version
    pillow_ref = f"pkg:pypi/pillow@{purl_version(version)}"
    hashes, props = _source_facts("pillow", recipe.pillow.source, manifest)
    props.append({"name": f"{PROP}:recipe", "value": recipe.name})
    if recipe.pillow.source.pip:
        props.append({"name": f"{PROP}:source-requirement", "value": recipe.pillow.source.pip})
    pillow: dict[str, Any] = {
        "bom-ref": pillow_ref,
        "type": "library",
        "name": "pillow",
        "version": version,
        "purl": pillow_ref,
        "licenses": [{"expression": licenses["pillow"]}],
        "properties": props,
    }
    if hashes:
        pillow["hashes"] = hashes
    pedigree = _pedigree(recipe, "pillow")
    if pedigree:
        pillow["pedigree"] = pedigree

    dependencies = [{"ref": pillow_ref, "dependsOn": sorted(refs.values())}]
    for name, ref in sorted(refs.items(), key=lambda kv: kv[1]):
        on = sorted(refs[d] for d in recipe.dependencies[name].depends if d in refs)
        dependencies.append({"ref": ref, "dependsOn": on} if on else {"ref": ref})

    metadata: dict[str, Any] = {
        "component": pillow,
        "lifecycles": [{"phase": "build"}],
        "tools": {
            "components": [
                {"type": "application", "name": "pillow-variants", "version": __version__}
            ]
        },
    }
    epoch = source_date_epoch() if epoch is None else epoch
    if epoch is not None:
        metadata["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    bom: dict[str, Any] = {
        "$schema": SCHEMA_URL,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": metadata,
        "components": components,
        "dependencies": dependencies,
    }
    digest = hashlib.sha256(json.dumps(bom, sort_keys=True).encode()).hexdigest()
    bom["serialNumber"] = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'sha256:' + digest)}"
    return bom

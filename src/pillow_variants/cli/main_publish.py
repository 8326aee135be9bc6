"""``pillow-variants publish WHEEL… --repository-url URL``: check, upload, verify."""

from __future__ import annotations

import argparse
import json

from pillow_variants._log import progress
from pillow_variants.release.index import resolve_credentials, scrub, secrets_of, split_userinfo
from pillow_variants.release.publish import DEFAULT_REQUIRED_RUNGS, RUNGS, publish

COMMAND = "publish"
HELP = "Upload variant wheels to an index (twine) after checking their rungs; verify by download."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("wheels", nargs="+", metavar="WHEEL", help="wheel files to publish")
    parser.add_argument(
        "--repository-url",
        required=True,
        metavar="URL",
        help="upload URL (twine's --repository-url); user:password in it is accepted, "
        "otherwise TWINE_USERNAME/TWINE_PASSWORD, .pypirc or keyring supply credentials",
    )
    parser.add_argument(
        "--index-url",
        metavar="URL",
        help="the index's simple API, for the existing-file check and the download-back "
        "(default: derived from --repository-url: …/legacy/ → …/simple/, else URL/simple/)",
    )
    parser.add_argument(
        "--require-rungs",
        nargs="+",
        choices=RUNGS,
        default=list(DEFAULT_REQUIRED_RUNGS),
        metavar="RUNG",
        help="rungs the build manifest must show passed "
        f"(default: {' '.join(DEFAULT_REQUIRED_RUNGS)})",
    )
    parser.add_argument(
        "--allow-missing-rungs",
        nargs="+",
        choices=RUNGS,
        default=[],
        metavar="RUNG",
        help="publish even though these rungs did not pass (recorded in the publish log)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="publish despite any missing rung or a failing pre-upload audit (recorded)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


def run(args: argparse.Namespace) -> int:
    # Both URLs are checked before anything else happens: an invalid one stops here with its
    # userinfo masked, before it could reach a message, the --json output or a publish log.
    repository_url, credentials = resolve_credentials(args.repository_url)
    secrets = secrets_of(credentials)
    index_url = args.index_url
    if index_url is not None:
        index_url, in_url = split_userinfo(index_url, "--index-url")
        credentials = credentials or in_url
        secrets += secrets_of(in_url)
    results = publish(
        args.wheels,
        repository_url,
        index_url=index_url,
        required_rungs=args.require_rungs,
        allow_missing=args.allow_missing_rungs,
        force=args.force,
        credentials=credentials,
        progress=lambda msg: progress(scrub(msg, secrets)),
    )
    if args.json:
        out = {
            "repository_url": repository_url,
            "index_url": results[0].index_url if results else index_url,
            "results": [r.to_dict() for r in results],
        }
        print(scrub(json.dumps(out, indent=2, sort_keys=True), secrets))
    else:
        for r in results:
            print(f"{r.filename}: {r.status}, verified sha256 {r.sha256}  (log: {r.log})")
    return 0

"""The browser assets the api serves under ``/static/vendor/``, so that neither the dashboard nor
GraphiQL loads anything from a CDN (a utility's operations network is often air-gapped).

``static/vendor/manifest.json`` names, for each file, the npm package, version and path it is a
byte-for-byte copy of, and its sha384 (the same integrity hash the CDN publishes, so GraphiQL's
``integrity=`` attributes keep working). ``python -m adrstack.api.vendor_assets --check`` verifies
the copies; ``--fetch`` (needs npm and the npm registry) downloads them again with ``npm pack``,
for a version bump: edit the manifest's versions, fetch, then update the hashes with ``--rehash``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
MANIFEST = VENDOR_DIR / "manifest.json"


def sha384(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def manifest() -> dict:
    return json.loads(MANIFEST.read_text())


def integrity_of(path: str) -> str:
    """The recorded sha384 of a vendored file, by its path under static/vendor/."""
    for entry in manifest()["files"]:
        if entry["path"] == path:
            return entry["sha384"]
    raise KeyError(path)


def check() -> list[str]:
    """Problems with the vendored files: missing, or not the bytes the manifest records."""
    problems = []
    for entry in manifest()["files"]:
        path = VENDOR_DIR / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']}: missing")
        elif sha384(path.read_bytes()) != entry["sha384"]:
            problems.append(f"{entry['path']}: not {entry['package']}@{entry['version']}'s {entry['file']}")
    return problems


def fetch(rehash: bool = False) -> None:
    """Download each package with ``npm pack`` and copy the manifest's files out of it."""
    doc = manifest()
    with tempfile.TemporaryDirectory(prefix="adrstack-vendor-") as tmp:
        tarballs: dict[str, Path] = {}
        for entry in doc["files"]:
            spec = f"{entry['package']}@{entry['version']}"
            if spec not in tarballs:
                name = subprocess.run(["npm", "pack", "--silent", spec], cwd=tmp, check=True,
                                      capture_output=True, text=True).stdout.strip().splitlines()[-1]
                tarballs[spec] = Path(tmp) / name
            with tarfile.open(tarballs[spec]) as tar:
                member = tar.extractfile(f"package/{entry['file']}")
                if member is None:
                    raise SystemExit(f"{spec} has no {entry['file']}")
                data = member.read()
            if rehash:
                entry["sha384"] = sha384(data)
            target = VENDOR_DIR / entry["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    if rehash:
        MANIFEST.write_text(json.dumps(doc, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adrstack.api.vendor_assets", description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="verify the vendored files against the manifest")
    action.add_argument("--fetch", action="store_true", help="download the manifest's files again with npm pack")
    parser.add_argument("--rehash", action="store_true", help="with --fetch: record the fetched files' hashes")
    args = parser.parse_args(argv)
    if args.fetch:
        fetch(rehash=args.rehash)
    problems = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{len(manifest()['files'])} vendored files match {MANIFEST.name}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

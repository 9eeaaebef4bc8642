#!/usr/bin/env python3
"""Independent TUF client for Nightlatch's interop tests (python-tuf ngclient).

Refreshes metadata from a repository directory made by nightlatch-keys and
nightlatch-sign, walking every N.root.json from the trusted root, then
downloads and verifies each named target. Prints one JSON object on stdout:

    {"root_version": 3, "timestamp_version": 2, "snapshot_version": 2,
     "targets_version": 4, "targets": {"nl-lock-v2/1.0.0.nlfw":
         {"length": 2048, "sha256": "...", "custom": {...}}}}

Exit status: 0 only if the refresh and every download verified; 1 otherwise
(the python-tuf error is printed on stderr); 2 on a usage error.

Usage:
    tuf_client.py --repo DIR --trusted-root 1.root.json --cache DIR [TARGET ...]
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
from urllib.parse import unquote, urlparse

from tuf.api.exceptions import DownloadHTTPError
from tuf.ngclient import FetcherInterface, Updater


class DirFetcher(FetcherInterface):
    """Serves file:// URLs from the local disk; a missing file is an HTTP 404."""

    def _fetch(self, url):
        path = unquote(urlparse(url).path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError as e:
            raise DownloadHTTPError(f"not found: {path}", 404) from e
        return iter([data])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", required=True, help="repository directory")
    p.add_argument("--trusted-root", required=True, help="root the client starts from")
    p.add_argument("--cache", required=True, help="client's metadata and download directory")
    p.add_argument("targets", nargs="*", help="target paths to download and verify")
    args = p.parse_args()

    repo = os.path.abspath(args.repo)
    meta_dir = os.path.join(args.cache, "metadata")
    dl_dir = os.path.join(args.cache, "downloads")
    os.makedirs(meta_dir, exist_ok=True)
    os.makedirs(dl_dir, exist_ok=True)
    cached_root = os.path.join(meta_dir, "root.json")
    if not os.path.exists(cached_root):
        shutil.copyfile(args.trusted_root, cached_root)

    try:
        updater = Updater(
            metadata_dir=meta_dir,
            metadata_base_url="file://" + repo + "/metadata/",
            target_dir=dl_dir,
            target_base_url="file://" + repo + "/targets/",
            fetcher=DirFetcher(),
            bootstrap=None,
        )
        updater.refresh()
        out = {"targets": {}}
        trusted = updater._trusted_set
        out["root_version"] = trusted.root.version
        out["timestamp_version"] = trusted.timestamp.version
        out["snapshot_version"] = trusted.snapshot.version
        out["targets_version"] = trusted.targets.version
        for name in args.targets:
            info = updater.get_targetinfo(name)
            if info is None:
                print(f"target {name} not found in the repository", file=sys.stderr)
                return 1
            path = updater.download_target(info)
            with open(path, "rb") as f:
                data = f.read()
            out["targets"][name] = {
                "length": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "custom": info.custom,
            }
    except Exception as e:  # every python-tuf refusal ends here
        print(f"python-tuf refused: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

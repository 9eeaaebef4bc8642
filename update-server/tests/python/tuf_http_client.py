#!/usr/bin/env python3
"""python-tuf (ngclient) against a running nightlatch-server, over HTTP.

Refreshes metadata from URL/repo/metadata/ starting from a trusted root,
downloads and verifies each named target from URL/repo/targets/, and prints
one JSON object:

    {"root_version": 1, "timestamp_version": 3, "snapshot_version": 2,
     "targets_version": 2, "targets": {"m/1.0.0.nlfw": {"length": ..., "sha256": ...}}}

Exit status 0 only if everything verified; 1 if python-tuf refused (its
error on stderr); 2 on a usage error.

Usage: tuf_http_client.py --url URL --trusted-root ROOT.json --cache DIR [TARGET ...]
"""

import argparse
import hashlib
import json
import os
import shutil
import sys

from tuf.ngclient import Updater


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--trusted-root", required=True)
    p.add_argument("--cache", required=True)
    p.add_argument("targets", nargs="*")
    args = p.parse_args()
    meta_dir = os.path.join(args.cache, "metadata")
    dl_dir = os.path.join(args.cache, "downloads")
    os.makedirs(meta_dir, exist_ok=True)
    os.makedirs(dl_dir, exist_ok=True)
    if not os.path.exists(os.path.join(meta_dir, "root.json")):
        shutil.copyfile(args.trusted_root, os.path.join(meta_dir, "root.json"))
    base = args.url.rstrip("/")
    try:
        updater = Updater(
            metadata_dir=meta_dir,
            metadata_base_url=base + "/repo/metadata/",
            target_dir=dl_dir,
            target_base_url=base + "/repo/targets/",
            bootstrap=None,
        )
        updater.refresh()
        trusted = updater._trusted_set
        out = {
            "root_version": trusted.root.version,
            "timestamp_version": trusted.timestamp.version,
            "snapshot_version": trusted.snapshot.version,
            "targets_version": trusted.targets.version,
            "targets": {},
        }
        for name in args.targets:
            info = updater.get_targetinfo(name)
            if info is None:
                print(f"target {name} not found", file=sys.stderr)
                return 1
            path = updater.download_target(info)
            with open(path, "rb") as f:
                data = f.read()
            out["targets"][name] = {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    except Exception as e:
        print(f"python-tuf refused: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes a TUF repository with python-tuf (tuf.api.metadata), for the lock's
TUF client interop tests (nightlatch-sim tuf-client).

The repository has consistent snapshots, a rotated root (1.root.json and
2.root.json, 2-of-3 root keys, one replaced), top-level targets with a
delegation to a terminating role "firmware" trusted for "nl-lock-v2/*", and
target files stored under hash-prefixed names. The firmware role's key uses
a key id that is NOT the SHA-256 of the key (python-tuf trusts listed key
ids as they are). Snapshot and timestamp list versions only (python-tuf's
defaults: no hashes, no lengths).

Keys are Ed25519 from fixed seeds, signed with securesystemslib's vendored
pure-Python Ed25519 (no `cryptography` needed in the venv). Test use only.

Prints one JSON object: {"targets": {NAME: {"length": N, "sha256": HEX}},
"root_versions": [1, 2]}.

With --plain: no consistent snapshots (snapshot.json, targets.json,
firmware.json, targets under their own names) and snapshot/timestamp entries
with lengths and hashes.

Usage: make_tuf_repo.py --out DIR [--expires-days N] [--plain]
"""

import argparse
import hashlib
import json
import os
from datetime import datetime, timedelta, timezone

from securesystemslib.formats import encode_canonical
from securesystemslib.signer import Signature, Signer, SSlibKey
from securesystemslib._vendor.ed25519 import ed25519 as pure_ed25519
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer


class SeedSigner(Signer):
    """Ed25519 signer over a fixed 32-byte seed (pure Python; tests only)."""

    def __init__(self, seed_byte, keyid=None):
        self.seed = bytes([seed_byte]) * 32
        self.pub = pure_ed25519.publickey_unsafe(self.seed)
        keyval = {"public": self.pub.hex()}
        if keyid is None:
            body = {"keytype": "ed25519", "scheme": "ed25519", "keyval": keyval}
            keyid = hashlib.sha256(encode_canonical(body).encode()).hexdigest()
        self._key = SSlibKey(keyid, "ed25519", "ed25519", keyval)

    @property
    def public_key(self):
        return self._key

    @classmethod
    def from_priv_key_uri(cls, priv_key_uri, public_key, secrets_handler=None):
        raise NotImplementedError

    def sign(self, payload):
        sig = pure_ed25519.signature_unsafe(payload, self.seed, self.pub)
        return Signature(self._key.keyid, sig.hex())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--expires-days", type=int, default=7)
    p.add_argument("--plain", action="store_true")
    args = p.parse_args()

    meta_dir = os.path.join(args.out, "metadata")
    targets_dir = os.path.join(args.out, "targets")
    os.makedirs(meta_dir, exist_ok=True)
    os.makedirs(targets_dir, exist_ok=True)
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(
        days=args.expires_days
    )
    ser = JSONSerializer(compact=False)

    r1, r2, r3 = SeedSigner(11), SeedSigner(12), SeedSigner(13)
    ts, snap, tgt = SeedSigner(14), SeedSigner(15), SeedSigner(16)
    fw = SeedSigner(17, keyid="firmware-release-key-2025")

    # Root 1: r1, r2 (2 of 2); root 2: r1, r3 (2 of 2), signed by both.
    consistent = not args.plain
    root = Metadata(Root(expires=expires, consistent_snapshot=consistent))
    for s in (r1, r2):
        root.signed.add_key(s.public_key, Root.type)
    for role, s in ((Timestamp.type, ts), (Snapshot.type, snap), (Targets.type, tgt)):
        root.signed.add_key(s.public_key, role)
    root.signed.roles[Root.type].threshold = 2
    root.sign(r1, append=True)
    root.sign(r2, append=True)
    root.to_file(os.path.join(meta_dir, "1.root.json"), ser)

    root.signed.version = 2
    root.signed.revoke_key(r2.public_key.keyid, Root.type)
    root.signed.add_key(r3.public_key, Root.type)
    root.signatures.clear()
    for s in (r1, r2, r3):
        root.sign(s, append=True)
    root.to_file(os.path.join(meta_dir, "2.root.json"), ser)
    root.to_file(os.path.join(meta_dir, "root.json"), ser)

    files = {
        "files/hello.txt": b"hello from python-tuf\n",
        "nl-lock-v2/2.0.0.nlfw": bytes(range(256)) * 20,
    }
    infos = {}
    for name, data in files.items():
        info = TargetFile.from_data(name, data, ["sha256", "sha512"])
        infos[name] = info
        d, _, base = name.rpartition("/")
        stored = [f"{h}.{base}" for h in info.hashes.values()] if consistent else [base]
        for file_name in stored:
            path = os.path.join(targets_dir, d, file_name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)

    fw_info = infos["nl-lock-v2/2.0.0.nlfw"]
    fw_info.unrecognized_fields["custom"] = {
        "nightlatch": {
            "kind": "firmware",
            "hardware_model": "nl-lock-v2",
            "version": "2.0.0",
            "security_counter": 4,
        }
    }
    firmware = Metadata(Targets(expires=expires))
    firmware.signed.targets[fw_info.path] = fw_info
    firmware.sign(fw)

    def write(md, role):
        """Write md as N.role.json (or role.json with --plain); its MetaFile."""
        data = md.to_bytes(ser)
        name = f"{md.signed.version}.{role}.json" if consistent else f"{role}.json"
        if role == "timestamp":
            name = "timestamp.json"
        with open(os.path.join(meta_dir, name), "wb") as f:
            f.write(data)
        if consistent:
            return MetaFile(version=md.signed.version)
        return MetaFile.from_data(md.signed.version, data, ["sha256", "sha512"])

    firmware_meta = write(firmware, "firmware")

    targets = Metadata(Targets(expires=expires))
    hello = infos["files/hello.txt"]
    targets.signed.targets[hello.path] = hello
    targets.signed.delegations = Delegations(
        keys={fw.public_key.keyid: fw.public_key},
        roles={
            "firmware": DelegatedRole(
                name="firmware",
                keyids=[fw.public_key.keyid],
                threshold=1,
                terminating=True,
                paths=["nl-lock-v2/*"],
            )
        },
    )
    targets.sign(tgt)
    targets_meta = write(targets, "targets")

    snapshot = Metadata(Snapshot(expires=expires))
    snapshot.signed.meta["targets.json"] = targets_meta
    snapshot.signed.meta["firmware.json"] = firmware_meta
    snapshot.sign(snap)
    snapshot_meta = write(snapshot, "snapshot")

    timestamp = Metadata(Timestamp(expires=expires))
    timestamp.signed.snapshot_meta = snapshot_meta
    timestamp.sign(ts)
    write(timestamp, "timestamp")

    out = {
        "root_versions": [1, 2],
        "targets": {
            n: {"length": i.length, "sha256": i.hashes["sha256"]} for n, i in infos.items()
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

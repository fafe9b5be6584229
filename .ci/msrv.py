#!/usr/bin/env python3
"""Checks Cargo.toml's `rust-version` (the MSRV) against the real dependency set.

Only one toolchain can be installed on the CI machines, so the MSRV is held
from two sides instead of by building with the old compiler:

* natron's own code: clippy's `incompatible_msrv` lint (on by default,
  denied by CI's `-D warnings`) refuses std APIs newer than `rust-version`;
* its dependencies: every package that `cargo test --all-features` builds
  for Linux (normal and dev dependencies, as resolved in Cargo.lock) must
  declare a `rust-version` at or below natron's. This script checks that,
  and fails naming the packages that need a newer Rust, so a `cargo update`
  that raises the real MSRV cannot pass unnoticed.
"""
import json
import subprocess
import sys

TARGET = "x86_64-unknown-linux-gnu"


def version(v):
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"]))
    root = next(p for p in meta["packages"] if p["id"] == meta["resolve"]["root"])
    msrv = root.get("rust_version")
    if not msrv:
        sys.exit("msrv: Cargo.toml has no rust-version")
    tree = subprocess.check_output(
        ["cargo", "tree", "--locked", "-e", "normal,dev", "--target", TARGET,
         "--all-features", "--prefix", "none", "-f", "{p}"], text=True)
    used = set()
    for line in tree.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            used.add((parts[0], parts[1].lstrip("v")))
    newer = []
    highest = None
    for p in meta["packages"]:
        rv = p.get("rust_version")
        if (p["name"], p["version"]) not in used or not rv:
            continue
        if highest is None or version(rv) > version(highest[0]):
            highest = (rv, p["name"], p["version"])
        if version(rv) > version(msrv):
            newer.append(f"{p['name']} {p['version']} needs {rv}")
    if newer:
        print(f"msrv: rust-version {msrv} is below what dependencies need:")
        for n in sorted(newer):
            print("  " + n)
        sys.exit(1)
    print(f"msrv: rust-version {msrv}; {len(used)} packages, the highest declared "
          f"{highest[0]} ({highest[1]} {highest[2]})" if highest else f"msrv: {msrv}")


main()

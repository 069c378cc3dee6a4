#!/usr/bin/env python3
"""Checks that Cargo.toml's rust-version is honest: no crate the library builds with on this
platform (its normal and build dependencies with every feature on, as locked in Cargo.lock)
declares a newer one.
Only one toolchain is installed on CI, so the minimum is derived from the dependency tree
rather than tested by building with it. Run after a build: it reads the manifests cargo has
already fetched, so it needs no network."""
import glob
import os
import subprocess
import sys
import tomllib


def version(v):
    """`1.90` or `1.90.0` as (1, 90, 0); a pre-release suffix (`-beta`) is ignored."""
    parts = (v or "0").split("-")[0].split(".")
    return tuple(int(x) for x in parts) + (0,) * (3 - len(parts))


def rust_version(manifest):
    with open(manifest, "rb") as f:
        package = tomllib.load(f).get("package", {})
    v = package.get("rust-version")
    return v if isinstance(v, str) else None  # `{ workspace = true }` only in our own crates


tree = subprocess.check_output(
    ["cargo", "tree", "--locked", "--offline", "-e", "normal,build", "--prefix", "none",
     "--no-dedupe", "--workspace", "--all-features", "--format", "{p}"], text=True)
home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
declared, needed = None, ((0,), "nothing", "")
for line in sorted(set(tree.splitlines())):
    parts = line.split()
    if len(parts) < 2:
        continue
    name, ver = parts[0], parts[1].lstrip("v")
    local = [p.strip("()") for p in parts[2:] if p.startswith("(/")]
    if local:  # a crate of this workspace
        v = version(rust_version(os.path.join(local[0], "Cargo.toml")))
        declared = v if declared is None else min(declared, v)
        continue
    found = glob.glob(os.path.join(home, "registry/src/*", f"{name}-{ver}", "Cargo.toml"))
    if not found:
        sys.exit(f"no manifest for {name} {ver} under {home}/registry/src: build first")
    needed = max(needed, (version(rust_version(found[0])), name, ver))
if declared is None:
    sys.exit("no crate of this workspace in `cargo tree`'s output")
shown = ".".join(map(str, declared))
if needed[0] > declared:
    sys.exit(f"rust-version {shown} is too old: {needed[1]} {needed[2]} needs "
             f"{'.'.join(map(str, needed[0]))}")
print(f"rust-version {shown} covers every dependency (the newest need: {needed[1]} "
      f"{needed[2]}, {'.'.join(map(str, needed[0]))})")

#!/usr/bin/env bash
# Builds an offline stand-in for the public base image `node:20-bookworm-slim`, for machines that
# cannot reach a container registry (CI here): a Debian bookworm `debootstrap --variant=minbase`
# root, this machine's Node 20 (node + npm, as the official image lays them out: /usr/local) and
# the `node` user (uid 1000), imported with `podman import`. The Dockerfiles take their base as a
# build argument, so they build from the public image elsewhere and from this one here:
#
#   docker/standin/make-base.sh [tag]        # default tag: localhost/celfarm-standin-node:20-bookworm
#   podman build --build-arg BASE=localhost/celfarm-standin-node:20-bookworm -f docker/Dockerfile ...
#
# Needs root, debootstrap, podman and Debian's mirror. The debootstrap root is cached in
# $CELFARM_STANDIN_CACHE (default .cache/deploy), so a rebuild skips the 1–2 minutes of debootstrap.
set -euo pipefail
tag="${1:-localhost/celfarm-standin-node:20-bookworm}"
root_dir="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${CELFARM_STANDIN_CACHE:-$root_dir/.cache/deploy}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$cache"

node_bin="$(command -v node)"
node_major="$("$node_bin" -p 'process.versions.node.split(".")[0]')"
[ "$node_major" = 20 ] || { echo "make-base: this machine's node is $("$node_bin" --version), the base needs Node 20" >&2; exit 1; }
npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
[ -f "$npm_dir/package.json" ] || { echo "make-base: npm not found next to node" >&2; exit 1; }

minbase="$cache/bookworm-minbase.tar"
if [ ! -s "$minbase" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "make-base: debootstrap --variant=minbase bookworm (about a minute or two)" >&2
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  # What the slim images leave out: package caches, lists, docs and man pages.
  rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/* \
         "$work/rootfs"/usr/share/doc/* "$work/rootfs"/usr/share/man/* "$work/rootfs"/usr/share/info/*
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
    "$mirror" "$mirror" >"$work/rootfs/etc/apt/sources.list"
  tar -C "$work/rootfs" -cf "$minbase.part" .
  mv "$minbase.part" "$minbase"
  rm -rf "$work"
  trap - EXIT
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/rootfs"
tar -C "$work/rootfs" -xf "$minbase"
install -D -m 0755 "$node_bin" "$work/rootfs/usr/local/bin/node"
mkdir -p "$work/rootfs/usr/local/lib/node_modules"
cp -a "$npm_dir" "$work/rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/local/bin/npx"
# The official image's user: uid/gid 1000, home /home/node.
chroot "$work/rootfs" /usr/sbin/groupadd --gid 1000 node
chroot "$work/rootfs" /usr/sbin/useradd --uid 1000 --gid node --shell /bin/bash --create-home node
tar -C "$work/rootfs" -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_VERSION='"$("$node_bin" -p process.versions.node)" \
  --change 'CMD ["node"]' \
  - "$tag" >/dev/null
echo "$tag"

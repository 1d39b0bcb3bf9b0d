#!/bin/sh
# Installs what Prunescope needs to build, test and run, from Debian 12's packages.
set -eu
packages="build-essential pkg-config meson ninja-build gettext
  libglib2.0-dev libjson-glib-dev libhdf5-dev libopenblas-dev libgdk-pixbuf-2.0-dev
  libgtk-4-dev libadwaita-1-dev libprotobuf-c-dev protobuf-c-compiler python3-onnx desktop-file-utils appstream xvfb xauth dataset-fashion-mnist"

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing

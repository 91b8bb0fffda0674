#!/usr/bin/env bash
# Debian packages behind two datasets and PNG export. Needs root (or sudo); without it, say what is skipped and
# carry on: the library, the default dataset and the tests that need none of these still work.
#   dataset-fashion-mnist  Fashion-MNIST images under /usr/share/datasets/fashion-mnist
#   r-cran-mlbench         only unpacked (not installed, which would pull in R): its DNA.rda holds the splice data
#   chromium               the browser kaleido drives to write PNG figures
set -euo pipefail
venv=${1:?usage: install_system_packages.sh VENV}
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else
  echo "install_system_packages: not root and no sudo: skipping fashion_mnist, splice and PNG export packages" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install_system_packages: no apt-get: skipping fashion_mnist, splice and PNG export packages" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends dataset-fashion-mnist chromium >/dev/null
dest="$venv/share/metamae_lab/mlbench"
if [ ! -f "$dest/data/DNA.rda" ]; then
  work=$(mktemp -d)
  (cd "$work" && apt-get download r-cran-mlbench >/dev/null && dpkg-deb -x r-cran-mlbench_*.deb unpacked)
  src=$(dirname "$(dirname "$(find "$work/unpacked" -name DNA.rda | head -n 1)")")
  mkdir -p "$dest" && cp -r "$src"/. "$dest"/
  rm -rf "$work"
fi
echo "install_system_packages: fashion-mnist, chromium and the splice data are in place"

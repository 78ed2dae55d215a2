#!/bin/sh
# Installs Debian's chromium for the browser test, unless one is on PATH.
# The package index is refreshed only when it does not know the package.
set -eu
for b in chromium chromium-browser google-chrome; do
	if command -v "$b" >/dev/null 2>&1; then
		exit 0
	fi
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
	$SUDO apt-get update
fi
$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core
chromium --version

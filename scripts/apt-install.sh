#!/bin/sh
# Usage: apt-install.sh COMMAND PACKAGE...
# Installs Debian's PACKAGEs unless COMMAND is already on PATH: chromium for
# the browser test, prometheus for promtool, wrk for the benchmarks and their
# test. The Makefile's setup target names every package the tests need. The package
# index is refreshed only when it does not know the first package.
set -eu
cmd=$1
shift
if command -v "$cmd" >/dev/null 2>&1; then
	exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
	$SUDO apt-get update
fi
$SUDO apt-get install -y --no-install-recommends "$@"
command -v "$cmd"

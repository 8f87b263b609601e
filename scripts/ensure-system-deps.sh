#!/usr/bin/env bash
# Installs the system programs the test suite drives, when missing:
# Debian's chromium (browser tests), redis-server (Redis tests) and nginx (the
# load balancer in front of replicas; the tests start their own nginx with their
# own config on 127.0.0.1 and never use the system service).
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# /usr/sbin is often not on a non-root user's PATH.
command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || missing+=(nginx)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "The tests need: ${missing[*]} (Debian packages). Install them as root:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "Installing ${missing[*]} with apt-get..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Installing Debian's nginx may start the system service (port 80); the tests do not use it.
apt-get install -y -qq "${missing[@]}" >/dev/null

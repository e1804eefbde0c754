#!/usr/bin/env bash
# Installs the system packages the project needs when they are missing (Debian/Ubuntu, as root):
# Java 17+ for the Kafka broker, Maven to fetch it, Python venv support, a C compiler and the
# Python headers for the C extensions (ingest/feed/_fastparse.c, harness/collector/*.c),
# librdkafka's headers and library for the collector's Kafka reader
# (harness/collector/_kafkaread.c), redis-server for the Redis snapshot tests, chromium for the
# test that opens the sign-off report headless. Does nothing when everything is present.
set -euo pipefail

missing=()
java_ok() {
  command -v java >/dev/null 2>&1 || return 1
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  [ -n "$v" ] && [ "$v" -ge 17 ]
}
java_ok || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
python3 -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' \
  >/dev/null 2>&1 || missing+=(python3-dev)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -f /usr/include/librdkafka/rdkafka.h ] || missing+=(librdkafka-dev)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
echo "system packages: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "error: need root to apt-get install ${missing[*]} (run: sudo $0)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

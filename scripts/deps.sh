#!/bin/sh
# Installs the Debian packages a target needs, only those missing.
#   scripts/deps.sh run|cluster|test
set -eu
run_pkgs="apache2 apache2-dev apache2-utils libjansson-dev libaprutil1-dbd-sqlite3 sqlite3 libpq-dev curl make gcc"
cluster_pkgs="postgresql libaprutil1-dbd-pgsql"
test_pkgs="perl libcmocka-dev clang clang-format cppcheck libclang-rt-14-dev python3-pytest python3-websockets python3-requests python3-prometheus-client chromium wrk openssl valgrind"
case "${1:-run}" in
run) pkgs=$run_pkgs ;;
cluster) pkgs="$run_pkgs $cluster_pkgs" ;;
test) pkgs="$run_pkgs $cluster_pkgs $test_pkgs" ;;
*) echo "usage: $0 run|cluster|test" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js may come from elsewhere than Debian (with its own npm): ask for the
# commands, not the packages
if [ "${1:-run}" = test ] && ! { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }; then
    missing="$missing nodejs npm"
fi
[ -z "$missing" ] && exit 0
echo "installing:$missing"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing

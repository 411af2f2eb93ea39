#!/usr/bin/env bash
# Builds the Debian package, installs it on this machine with apt-get, and checks the
# installed result: `elector --version`, the man page and completions in place, the
# conffile, the system user, and `systemd-analyze verify` of the installed units. Then
# removes it again. Needs root (apt-get). .ci/run calls it after the test suite.
#   bash scripts/test-package.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "test-package: FAIL: $*" >&2; exit 1; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

bash scripts/build-deb.sh "$@"
deb=$(ls -t target/debian/elector_*.deb | head -1)
version=$(dpkg-deb -f "$deb" Version)

if dpkg-query -W -f='${Status}' elector 2>/dev/null | grep -q "install ok installed"; then
  fail "a package named elector is installed already; remove it first"
fi
# Leave the machine as it was: purge (conffiles too: a left-over /etc/elector/elector.toml
# would become every later test's configuration), and drop the user and /etc/elector if
# this script's install made them.
had_user=0; getent passwd elector >/dev/null && had_user=1
had_etc=0; [ -e /etc/elector ] && had_etc=1
cleanup() {
  $SUDO apt-get purge -y -qq elector >/dev/null 2>&1 || true
  if [ "$had_user" = 0 ] && getent passwd elector >/dev/null; then
    $SUDO deluser --system --quiet elector >/dev/null 2>&1 || $SUDO userdel elector || true
    $SUDO delgroup --system --quiet elector >/dev/null 2>&1 || true
  fi
  if [ "$had_etc" = 0 ]; then $SUDO rm -rf /etc/elector; fi
}
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -qq "./$deb" >/dev/null

[ "$(command -v elector)" = /usr/bin/elector ] || fail "elector is not /usr/bin/elector"
got=$(elector --version)
[ "$got" = "elector $version" ] || fail "elector --version says '$got', expected 'elector $version'"
for f in /usr/share/man/man1/elector.1.gz /usr/share/bash-completion/completions/elector \
  /usr/share/zsh/vendor-completions/_elector /usr/share/fish/vendor_completions.d/elector.fish \
  /etc/elector/elector.toml /lib/systemd/system/elector-agent.service; do
  [ -s "$f" ] || fail "$f missing or empty"
done
zcat /usr/share/man/man1/elector.1.gz | grep -q '^\.TH' || fail "the man page has no .TH header"
dpkg-query -W -f='${Conffiles}' elector | grep -q /etc/elector/elector.toml \
  || fail "/etc/elector/elector.toml is not a conffile"
getent passwd elector >/dev/null || fail "postinst did not create the elector user"
elector --config /etc/elector/elector.toml config --check >/dev/null \
  || fail "the installed example configuration does not pass config --check"
# The templates are verified through an instance each.
out=$(systemd-analyze verify --man=no /lib/systemd/system/elector-agent.service \
  /lib/systemd/system/elector-run@example.service /lib/systemd/system/elector-cron@example.service \
  /lib/systemd/system/elector-cron@example.timer 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify complained: $out"

echo "test-package: $deb ($(du -h "$deb" | cut -f1)) installs and checks out:"
dpkg -L elector | while read -r f; do [ -d "$f" ] || echo "  $f"; done

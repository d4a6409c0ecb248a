#!/usr/bin/env bash
# CI: the Debian package. Builds the .deb with CPack from the ci-gcc build (./dev.sh test has
# built it), installs it with dpkg -i on this machine, checks what it installed (the binary, the
# sample configuration, the units), then removes it (dpkg -r) and purges it (dpkg -P), checking
# that its files are gone. Needs root. If anything fails midway, the trap purges the package and
# removes what this script created, so the machine is left as it was found.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build/ci-gcc}
if [[ $(id -u) -ne 0 ]]; then
    echo "ci-package: needs root (dpkg -i)" >&2
    exit 1
fi
if dpkg-query -W -f='${Status}' billsync 2>/dev/null | grep -q "installed"; then
    echo "ci-package: a billsync package is installed on this machine; not touching it" >&2
    exit 1
fi
for path in /etc/billsync /var/lib/billsync; do
    if [[ -e $path ]]; then
        echo "ci-package: $path exists; not touching this machine" >&2
        exit 1
    fi
done
scripts/install-deps.sh --package
user_existed=0
getent passwd billsync >/dev/null && user_existed=1

work=$(mktemp -d /tmp/billsync-ci-package.XXXXXX)
cleanup() {
    local rc=$?
    trap - EXIT
    if dpkg-query -W -f='${Status}' billsync 2>/dev/null | grep -qv "not-installed"; then
        echo "ci-package: cleaning up: purging billsync" >&2
        dpkg -P billsync >/dev/null 2>&1 || true
    fi
    rm -rf /etc/billsync /var/lib/billsync
    if ((user_existed == 0)) && getent passwd billsync >/dev/null; then
        userdel billsync >/dev/null 2>&1 || true
        groupdel billsync >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT

fail() {
    echo "ci-package: FAIL: $*" >&2
    exit 1
}

echo "== package: cpack -G DEB"
cmake --build "$build" --target billsync billsync_man >/dev/null
(cd "$build" && cpack -G DEB -B "$work/pkg" >/dev/null)
deb=$(ls "$work"/pkg/billsync_*.deb)
dpkg-deb --field "$deb" Package Version Architecture Depends Installed-Size
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/billsync ./usr/lib/systemd/system/billsync.service \
    ./usr/lib/systemd/system/billsync@.service ./usr/lib/sysusers.d/billsync.conf \
    ./usr/lib/tmpfiles.d/billsync.conf ./etc/billsync/billsync.toml \
    ./etc/billsync/engagements.toml ./usr/share/man/man1/billsync.1.gz \
    ./usr/share/doc/billsync/README.md ./usr/share/doc/billsync/configuration.md \
    ./usr/share/doc/billsync/operations.md ./usr/share/doc/billsync/copyright \
    ./usr/share/doc/billsync/examples/kubernetes/billsync.yaml; do
    grep -qx -- "$f" <<<"$contents" || fail "$f is not in the package"
done

echo "== install: dpkg -i"
dpkg -i "$deb"
billsync version
getent passwd billsync >/dev/null || fail "postinst did not create the billsync user"
[[ $(stat -c '%U %a' /var/lib/billsync) == "billsync 700" ]] || fail "/var/lib/billsync"
[[ $(stat -c '%U %a' /etc/billsync/credentials) == "root 700" ]] || fail "/etc/billsync/credentials"
dpkg-query -W -f='${Conffiles}\n' billsync | grep -q "/etc/billsync/billsync.toml" ||
    fail "/etc/billsync/billsync.toml is not a conffile"
man -w billsync >/dev/null || fail "man billsync"

echo "== validate the installed sample"
sample=/etc/billsync/billsync.toml
# Without its secrets: the file alone.
env -u CREDENTIALS_DIRECTORY billsync validate --no-environment --config "$sample"
# With them, as the unit provides them: one file per LoadCredential= line of the unit, read
# through $CREDENTIALS_DIRECTORY, by the billsync user (so data_dir is checked as the daemon sees it).
creds="$work/credentials"
mkdir -m 0700 "$creds"
names=$(sed -n 's/^LoadCredential=\([^:]*\):.*/\1/p' /usr/lib/systemd/system/billsync.service)
[[ -n $names ]] || fail "no LoadCredential= in billsync.service"
for name in $names; do
    if [[ $name == secrets_key ]]; then
        openssl rand -base64 32 >"$creds/$name"
    else
        printf 'ci-%s-%s\n' "$name" "$(openssl rand -hex 16)" >"$creds/$name"
    fi
done
chown -R billsync:billsync "$creds"
chmod 0711 "$work"
CREDENTIALS_DIRECTORY="$creds" runuser -u billsync -- billsync validate --config "$sample"
# Every credential is needed: without one, validation names its key.
rm "$creds/twilio_auth_token"
if out=$(CREDENTIALS_DIRECTORY="$creds" runuser -u billsync -- billsync validate --config "$sample" 2>&1); then
    fail "validate passed without twilio_auth_token"
fi
grep -q "cannot read credential 'twilio_auth_token'" <<<"$out" || fail "unexpected: $out"

echo "== systemd-analyze verify"
systemd-analyze verify billsync.service
systemd-analyze verify billsync@ci.service

echo "== remove: dpkg -r"
dpkg -r billsync
for f in /usr/bin/billsync /usr/lib/systemd/system/billsync.service \
    /usr/lib/systemd/system/billsync@.service /usr/lib/sysusers.d/billsync.conf \
    /usr/share/doc/billsync; do
    [[ ! -e $f ]] || fail "$f is still there after dpkg -r"
done
# remove keeps the configuration and the state.
[[ -f /etc/billsync/billsync.toml ]] || fail "dpkg -r removed the configuration"
[[ -d /var/lib/billsync ]] || fail "dpkg -r removed the state"

echo "== purge: dpkg -P"
dpkg -P billsync
for f in /etc/billsync /var/lib/billsync; do
    [[ ! -e $f ]] || fail "$f is still there after dpkg -P"
done
if dpkg-query -W -f='${Status}' billsync 2>/dev/null | grep -qv "not-installed"; then
    fail "dpkg still knows billsync"
fi
echo "== package: ok"

#!/bin/sh
# test-recover.sh [SHELL]
#
# Checks recover.sh against a vault built by make-sample-vault.sh: a full
# restore reproduces the expected plaintext tree (content, modes, mtimes,
# symlink targets), and every hostile or damaged input is refused with the
# documented exit status without writing outside OUT_DIR. SHELL (default sh)
# runs both scripts, e.g. `test-recover.sh dash`.
# Requires what make-sample-vault.sh and recover.sh require, plus find, grep,
# cmp and diff. Prints "ok" last; exits non-zero on the first failed check set.

set -u
LC_ALL=C
export LC_ALL
SH=${1:-sh}
HERE=$(cd "$(dirname "$0")" && pwd)
RECOVER=$HERE/../recover.sh
T=$(mktemp -d "${TMPDIR:-/tmp}/test-recover.XXXXXX")
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
FAILED=0
LAST=

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    if [ "${SHOWN:-}" != "$LAST" ]; then
        printf -- '--- output of %s:\n' "$LAST" >&2
        cat "$T/out" >&2
        printf -- '---\n' >&2
        SHOWN=$LAST
    fi
    FAILED=1
}

expect_rc() { # WANT NAME COMMAND...
    want=$1 name=$2 LAST=$2
    shift 2
    "$@" >"$T/out" 2>&1
    got=$?
    [ "$got" -eq "$want" ] || fail "$name: exit $got, want $want"
}

# What a tree holds, one line per entry: path, type, mode, size, mtime
# (files, links, and recorded directories), link target; plus file content.
state() { # DIR
    (cd "$1" && find . ! -name . -printf '%p %y %m %s %l\n' | sort)
    (cd "$1" && find . -type f -exec sha256sum {} + | sort)
}
mtimes() { # DIR: mtime of every file and link (directories get theirs last, checked apart)
    (cd "$1" && find . \( -type f -o -type l \) -printf '%p %T@\n' | sort)
}

S=$T/sample
"$SH" "$HERE/make-sample-vault.sh" "$S" >/dev/null || { echo "FAIL: make-sample-vault.sh" >&2; exit 1; }
V=$S/vault

# A full restore of main reproduces expected/.
expect_rc 0 "restore main" "$SH" "$RECOVER" "$V" "$S/key.txt" "$T/main"
state "$S/expected" | grep -v ' d ' >"$T/want"
state "$T/main" | grep -v ' d ' >"$T/got"
cmp -s "$T/want" "$T/got" || { fail "restored files differ from expected/"; diff "$T/want" "$T/got" >&2; }
mtimes "$S/expected" >"$T/want"
mtimes "$T/main" >"$T/got"
cmp -s "$T/want" "$T/got" || fail "restored mtimes differ from expected/"
for d in node1/etc/ssl/etcd/ssl:700 node2/etc/ssl/etcd/ssl:500 node1/usr/local/share/ca-certificates:755; do
    m=$(stat -c %a "$T/main/${d%:*}")
    [ "$m" = "${d#*:}" ] || fail "${d%:*}: mode $m, want ${d#*:}"
done
[ "$(readlink "$T/main/node2/usr/local/share/ca-certificates/etcd-ca.crt")" = ../../../../etc/ssl/etcd/ssl/ca.pem ] ||
    fail "relative symlink not restored verbatim"
grep -q '^node1: 14 entries$' "$T/out" || fail "no 'node1: 14 entries' line"
grep -q '^_control: 5 entries$' "$T/out" || fail "no '_control: 5 entries' line"
grep -qF "checkout v2.24.0" "$T/out" || fail "the control host's kubespray version was not printed"
m=$(stat -c %a "$T/main/_control/inventory/mycluster/credentials")
[ "$m" = 700 ] || fail "_control credentials/: mode $m, want 700"

# The previous backup has the old admin.conf.
expect_rc 0 "restore main~1" "$SH" "$RECOVER" "$V" "$S/key.txt" "$T/prev" main~1
cmp -s "$T/prev/node1/etc/kubernetes/admin.conf" "$T/main/node1/etc/kubernetes/admin.conf" &&
    fail "main~1 restored the new admin.conf"

# Hostile: refused entries, nothing outside OUT_DIR, the harmless entry restored.
expect_rc 1 "restore hostile" "$SH" "$RECOVER" "$V" "$S/key.txt" "$T/out-hostile/o" hostile
[ -z "$(ls -A "$S/outside")" ] || fail "hostile vault wrote into outside/"
[ ! -e "$T/out-hostile/etc" ] || fail "node '..' was restored"
[ ! -e "$T/out-hostile/outside" ] || fail "a '..' path was restored"
[ -f "$T/out-hostile/o/evil/etc/ok.conf" ] || fail "the harmless entry of evil was not restored"
for why in 'refusing node name ".."' "'.' or '..' component" 'is not absolute' 'is a symbolic link; refusing to write through it'; do
    grep -qF "$why" "$T/out" || fail "hostile: no message containing: $why"
done

# Damaged manifests.
expect_rc 1 "restore corrupt" "$SH" "$RECOVER" "$V" "$S/key.txt" "$T/corrupt" corrupt
grep -q 'sprayvault-manifest 2' "$T/out" || fail "corrupt: header not reported"
grep -q 'empty field' "$T/out" || fail "corrupt: empty field not reported"
grep -q '0899' "$T/out" || fail "corrupt: bad mode not reported"

# Refusals that write nothing.
expect_rc 3 "wrong identity" "$SH" "$RECOVER" "$V" "$S/wrong-key.txt" "$T/wrong"
[ ! -e "$T/wrong" ] || fail "wrong identity: OUT_DIR was created"
expect_rc 2 "missing rev" "$SH" "$RECOVER" "$V" "$S/key.txt" "$T/norev" no-such-rev
[ ! -e "$T/norev" ] || fail "missing rev: OUT_DIR was created"
expect_rc 2 "non-empty OUT_DIR" "$SH" "$RECOVER" "$V" "$S/key.txt" "$T/main"
expect_rc 2 "not a repository" "$SH" "$RECOVER" "$S/expected" "$S/key.txt" "$T/norepo"
expect_rc 2 "usage" "$SH" "$RECOVER" "$V" "$S/key.txt"

[ "$FAILED" -eq 0 ] || exit 1
echo ok

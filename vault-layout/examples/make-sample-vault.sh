#!/bin/sh
# make-sample-vault.sh OUTDIR
#
# Builds a sprayvault format-1 vault by hand, with git plumbing and the age
# CLI only, following vault-layout/README.md to the letter. It is a second,
# independent writer of the format: tests use it to check that the
# specification, recover.sh and the Rust code agree.
#
# OUTDIR must be empty or absent. It receives:
#
#   vault/            the bare repository (HEAD -> refs/heads/main), with the
#                     local state vault/sprayvault/mac-key (0600)
#   key.txt           an age identity that can decrypt the vault
#   wrong-key.txt     an age identity that cannot
#   expected/_control/…  the control host's kubespray directory (ansible.cfg,
#                     inventory/mycluster/ with a 0700 credentials/) recorded
#                     by refs/heads/main, as recover.sh writes it
#   expected/NODE/…   the plaintext state recorded by refs/heads/main, written
#                     directly (not through the vault): what a restore of main
#                     must reproduce (content, mode, mtime, symlink targets;
#                     owners are not applied)
#   outside/          an empty directory; hostile entries try to write here
#
# and these refs:
#
#   refs/heads/main     init, then backup 1 (node1 + node2 ok, and the control
#                       host at kubespray v2.24.0), then backup 2
#                       (node1 ok with /etc/kubernetes/admin.conf changed,
#                       node2 failed and carried over unchanged)
#   refs/heads/hostile  main plus a node "evil" whose manifest holds a path
#                       with '..', a '.' component, a relative path, and a file
#                       below a symlink pointing at OUTDIR/outside; and a node
#                       named ".." (every one of these must be refused)
#   refs/heads/corrupt  main with node1's manifest header changed to version 2
#                       and two damaged lines in node2's manifest
#
# The sample covers: a 0700 directory, a 0500 directory holding files, a 0600
# and a 0400 key, an absolute and a relative symlink (one pointing out of the
# recorded tree), a file name with a space, an owner without a name ('-'), the
# same content on two nodes and at two paths (stored once), and an unchanged
# backup reusing every blob but one.
#
# Notes: expected/ and restored copies hold a 0500 directory; a non-root user
# must `chmod -R u+w` them before deleting them. The trees of refs/heads/hostile
# make `git fsck` print hasDot/hasDotdot warnings (on purpose); a vault that
# sprayvault writes never has them.
#
# Environment: SAMPLE_MAC_KEY (64 lowercase hex digits) fixes the keyed-hash
# key, making every manifest reproducible; by default it is random.
# Requires: git, age, age-keygen, openssl (for HMAC-SHA256), coreutils.

set -eu
LC_ALL=C
export LC_ALL
umask 022

die() {
    printf 'make-sample-vault.sh: %s\n' "$*" >&2
    exit 2
}

[ $# -eq 1 ] || die "usage: make-sample-vault.sh OUTDIR"
for tool in git age age-keygen openssl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required but not found"
done

D=$1
case $D in /*) ;; *) D=$PWD/$D ;; esac
if [ -e "$D" ] || [ -L "$D" ]; then
    [ -d "$D" ] || die "$D exists and is not a directory"
    [ -z "$(ls -A -- "$D")" ] || die "$D is not empty"
fi
mkdir -p -- "$D"

V=$D/vault
E=$D/expected
W=$D/.work
TAB=$(printf '\t')
HOST=$(uname -n)
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_NAMESPACE
export GIT_CONFIG_NOSYSTEM=1
# Author and committer of every commit: sprayvault <sprayvault@HOSTNAME>.
GIT_AUTHOR_NAME=sprayvault GIT_COMMITTER_NAME=sprayvault
GIT_AUTHOR_EMAIL=sprayvault@$HOST GIT_COMMITTER_EMAIL=sprayvault@$HOST
export GIT_AUTHOR_NAME GIT_COMMITTER_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_EMAIL
mkdir "$W" "$D/outside"
trap 'rm -rf "$W"' EXIT

g() { git --git-dir "$V" "$@"; }

# ---------------------------------------------------------------- keys ----

age-keygen -o "$D/key.txt" 2>/dev/null
age-keygen -o "$D/wrong-key.txt" 2>/dev/null
RCPT=$(age-keygen -y "$D/key.txt")

MACKEY=${SAMPLE_MAC_KEY:-$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')}
case $MACKEY in *[!0-9a-f]*) die "SAMPLE_MAC_KEY must be 64 lowercase hex digits" ;; esac
[ ${#MACKEY} -eq 64 ] || die "SAMPLE_MAC_KEY must be 64 lowercase hex digits"

# ------------------------------------------------------------ contents ----
# Deterministic, realistic-looking file contents, named by a label.

pem() { # LABEL TYPE LINES
    printf '%s\n' "-----BEGIN $2-----"
    i=0
    while [ "$i" -lt "$3" ]; do
        printf '%s/%s' "$1" "$i" | sha256sum | cut -c1-48
        i=$((i + 1))
    done | tr -d '\n' | base64 -w 64
    printf '%s\n' "-----END $2-----"
}

etcd_env() { # NODE NUMBER
    cat <<EOF
# Managed by kubespray
ETCD_DATA_DIR=/var/lib/etcd
ETCD_ADVERTISE_CLIENT_URLS=https://10.0.10.1$2:2379
ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.10.1$2:2380
ETCD_INITIAL_CLUSTER_STATE=existing
ETCD_METRICS=basic
ETCD_LISTEN_CLIENT_URLS=https://10.0.10.1$2:2379,https://127.0.0.1:2379
ETCD_ELECTION_TIMEOUT=5000
ETCD_HEARTBEAT_INTERVAL=250
ETCD_INITIAL_CLUSTER_TOKEN=k8s_etcd
ETCD_LISTEN_PEER_URLS=https://10.0.10.1$2:2380
ETCD_NAME=etcd$2
ETCD_PROXY=off
ETCD_INITIAL_CLUSTER=etcd1=https://10.0.10.11:2380
ETCD_AUTO_COMPACTION_RETENTION=8
ETCD_TRUSTED_CA_FILE=/etc/ssl/etcd/ssl/ca.pem
ETCD_CERT_FILE=/etc/ssl/etcd/ssl/member-$1.pem
ETCD_KEY_FILE=/etc/ssl/etcd/ssl/member-$1-key.pem
ETCD_CLIENT_CERT_AUTH=true
ETCD_PEER_TRUSTED_CA_FILE=/etc/ssl/etcd/ssl/ca.pem
ETCD_PEER_CERT_FILE=/etc/ssl/etcd/ssl/member-$1.pem
ETCD_PEER_KEY_FILE=/etc/ssl/etcd/ssl/member-$1-key.pem
ETCD_PEER_CLIENT_CERT_AUTH=True
EOF
}

kubeconfig() { # USER SERIAL
    ca=$(pem cert:kube-ca CERTIFICATE 18 | base64 -w 0)
    crt=$(pem "cert:$1:$2" CERTIFICATE 16 | base64 -w 0)
    key=$(pem "key:$1:$2" "RSA PRIVATE KEY" 24 | base64 -w 0)
    cat <<EOF
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $ca
    server: https://127.0.0.1:6443
  name: cluster.local
contexts:
- context:
    cluster: cluster.local
    user: $1
  name: $1@cluster.local
current-context: $1@cluster.local
kind: Config
preferences: {}
users:
- name: $1
  user:
    client-certificate-data: $crt
    client-key-data: $key
EOF
}

content() { # LABEL
    case $1 in
        cert:*) pem "$1" CERTIFICATE 18 ;;
        key:*) pem "$1" "RSA PRIVATE KEY" 24 ;;
        env:node1) etcd_env node1 1 ;;
        conf:*)
            x=${1#conf:}
            kubeconfig "${x%:*}" "${x##*:}"
            ;;
        text:*) printf '%s\n' "${1#text:}" ;;
        *) die "unknown content label $1" ;;
    esac
}

# ----------------------------------------------------- node descriptions ----
# One entry a line: kind mode uid gid owner group mtime source path
# (source: content label for files, target for links, '-' for directories;
# the path is the rest of the line and may contain spaces).

cat >"$W/node1.v1" <<'EOF'
f 0640 0 0 root root 1763455528 env:node1 /etc/etcd.env
f 0600 0 0 root root 1763455821 conf:kubernetes-admin:1 /etc/kubernetes/admin.conf
l 0777 0 0 root root 1763455530 /etc/kubernetes/ssl /etc/kubernetes/pki
d 0755 0 996 root kube-cert 1763455790 - /etc/kubernetes/ssl
f 0644 0 0 root root 1763455532 cert:kube-ca /etc/kubernetes/ssl/ca.crt
f 0600 0 0 root root 1763455532 key:kube-ca /etc/kubernetes/ssl/ca.key
d 0700 998 0 etcd root 1763455400 - /etc/ssl/etcd/ssl
f 0600 998 0 etcd root 1763455398 key:etcd-ca /etc/ssl/etcd/ssl/ca-key.pem
f 0644 998 0 etcd root 1763455398 cert:etcd-ca /etc/ssl/etcd/ssl/ca.pem
f 0600 998 0 etcd root 1763455399 key:member-node1 /etc/ssl/etcd/ssl/member-node1-key.pem
f 0640 998 0 etcd root 1763455399 cert:member-node1 /etc/ssl/etcd/ssl/member-node1.pem
d 0755 0 0 root root 1763455410 - /usr/local/share/ca-certificates
f 0644 0 0 root root 1763455405 cert:corp-root /usr/local/share/ca-certificates/corp root ca.crt
f 0644 0 0 root root 1763455410 cert:etcd-ca /usr/local/share/ca-certificates/etcd-ca.crt
EOF

# Backup 2: admin.conf was rotated; everything else is unchanged.
while IFS= read -r line; do
    case $line in
        *' /etc/kubernetes/admin.conf') printf '%s\n' 'f 0600 0 0 root root 1764035950 conf:kubernetes-admin:2 /etc/kubernetes/admin.conf' ;;
        *) printf '%s\n' "$line" ;;
    esac
done <"$W/node1.v1" >"$W/node1.v2"

cat >"$W/node2.v1" <<'EOF'
f 0600 0 0 root root 1763456100 conf:system:node:node2:1 /etc/kubernetes/kubelet.conf
l 0777 0 0 root root 1763456001 ssl /etc/kubernetes/pki
d 0755 0 996 root kube-cert 1763456050 - /etc/kubernetes/ssl
f 0644 0 0 root root 1763456002 cert:kube-ca /etc/kubernetes/ssl/ca.crt
f 0644 1234 1234 - - 1763456050 cert:front-proxy-ca /etc/kubernetes/ssl/front-proxy-ca.crt
d 0500 998 0 etcd root 1763456020 - /etc/ssl/etcd/ssl
f 0644 998 0 etcd root 1763456010 cert:etcd-ca /etc/ssl/etcd/ssl/ca.pem
f 0400 998 0 etcd root 1763456011 key:node-node2 /etc/ssl/etcd/ssl/node-node2-key.pem
f 0644 998 0 etcd root 1763456011 cert:node-node2 /etc/ssl/etcd/ssl/node-node2.pem
d 0755 0 0 root root 1763456030 - /usr/local/share/ca-certificates
f 0644 0 0 root root 1763456025 cert:corp-root /usr/local/share/ca-certificates/corp root ca.crt
l 0777 0 0 root root 1763456030 ../../../../etc/ssl/etcd/ssl/ca.pem /usr/local/share/ca-certificates/etcd-ca.crt
EOF

# The control host: paths relative to the kubespray directory.
cat >"$W/control.v1" <<'EOF'
f 0644 0 0 root root 1763455000 text:[defaults] /ansible.cfg
d 0755 0 0 root root 1763455003 - /inventory/mycluster
d 0700 0 0 root root 1763455002 - /inventory/mycluster/credentials
f 0600 0 0 root root 1763455002 text:kube-encrypt-token-v1 /inventory/mycluster/credentials/kube_encrypt_token.creds
f 0644 0 0 root root 1763455001 text:[kube_node] /inventory/mycluster/inventory.ini
EOF

# ------------------------------------------------------------- writing ----

hmac() { # FILE -> lowercase hex HMAC-SHA256 keyed with the mac-key
    openssl dgst -sha256 -mac HMAC -macopt "hexkey:$MACKEY" -r "$1" | cut -c1-64
}

iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

lookup() { # MAC -> blob id of content already in the vault, or nothing
    while read -r m o; do
        if [ "$m" = "$1" ]; then
            printf '%s\n' "$o"
            return 0
        fi
    done <"$W/known"
}

# The dedup index: the mac of every file entry of every node of PARENT, with
# the blob holding its ciphertext.
known_from_parent() { # PARENT
    : >"$W/known"
    g ls-tree --name-only "$1:nodes" >"$W/parent-nodes" 2>/dev/null || return 0
    while IFS= read -r n; do
        g cat-file blob "$1:nodes/$n/manifest" | tail -n +2 >"$W/parent-manifest"
        while IFS="$TAB" read -r kind _ _ _ _ _ _ _ mac path _; do
            [ "$kind" = f ] || continue
            printf '%s %s\n' "$mac" "$(g rev-parse "$1:nodes/$n/files$path")" >>"$W/known"
        done <"$W/parent-manifest"
    done <"$W/parent-nodes"
}

start_tree() {
    GIT_INDEX_FILE=$W/index
    export GIT_INDEX_FILE
    rm -f "$GIT_INDEX_FILE"
    g read-tree --empty
}

add_blob() { # OID PATH
    g update-index --add --cacheinfo "100644,$1,$2"
}

NEW_BLOBS=0
FILES=0
CHANGED=0

# Reads a node from its description: encrypts only content whose mac is not
# known yet, writes the manifest, and adds both to the tree being built.
# TREE, when set, is the tree written instead of nodes/NODE (control).
add_node() { # NODE DESCRIPTION [PARENT]
    t=${TREE:-nodes/$1}
    : >"$W/body"
    while read -r kind mode uid gid owner group mtime src path <&3; do
        mac=- target=- size=0
        case $kind in
            f)
                content "$src" >"$W/plain"
                size=$(($(wc -c <"$W/plain")))
                mac=$(hmac "$W/plain")
                oid=$(lookup "$mac")
                if [ -z "$oid" ]; then
                    age -r "$RCPT" -o "$W/cipher" "$W/plain"
                    oid=$(g hash-object -w --no-filters "$W/cipher")
                    printf '%s %s\n' "$mac" "$oid" >>"$W/known"
                    NEW_BLOBS=$((NEW_BLOBS + 1))
                fi
                add_blob "$oid" "$t/files$path"
                FILES=$((FILES + 1))
                ;;
            l)
                target=$src
                size=$(($(printf '%s' "$target" | wc -c)))
                ;;
            d) ;;
            *) die "bad description line: $kind" ;;
        esac
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
            "$kind" "$mode" "$uid" "$gid" "$owner" "$group" "$size" "$mtime" "$mac" "$path" "$target" >>"$W/body"
    done 3<"$2"
    {
        printf 'sprayvault-manifest 1\n'
        sort -t "$TAB" -k10,10 "$W/body"
    } >"$W/manifest"
    if [ $# -ge 3 ]; then
        g cat-file blob "$3:$t/manifest" >"$W/old-manifest" 2>/dev/null || : >"$W/old-manifest"
    else
        : >"$W/old-manifest"
    fi
    # Entries added or changed since the parent (for the summary line only).
    tail -n +2 "$W/old-manifest" | sort >"$W/old-sorted"
    tail -n +2 "$W/manifest" | sort >"$W/new-sorted"
    CHANGED=$((CHANGED + $(comm -13 "$W/old-sorted" "$W/new-sorted" | wc -l)))
    add_blob "$(g hash-object -w --no-filters "$W/manifest")" "$t/manifest"
}

carry_node() { # NODE PARENT
    g read-tree -i --prefix="nodes/$1/" "$(g rev-parse "$2:nodes/$1")"
}

add_common() { # PARENT|-
    add_blob "$(g hash-object -w --no-filters "$W/sprayvault.json")" sprayvault.json
    if [ "$1" = - ]; then
        add_blob "$MACKEY_BLOB" mac-key.age
    else
        add_blob "$(g rev-parse "$1:mac-key.age")" mac-key.age
    fi
}

# Writes the commit, then moves refs/heads/main by compare-and-swap from
# PARENT: objects first, the ref last.
commit() { # REF PARENT|- FINISH-EPOCH MESSAGE-FILE
    tree=$(g write-tree)
    GIT_AUTHOR_DATE="$3 +0000" GIT_COMMITTER_DATE="$3 +0000"
    export GIT_AUTHOR_DATE GIT_COMMITTER_DATE
    if [ "$2" = - ]; then
        c=$(g commit-tree "$tree" -F "$4")
        g update-ref "$1" "$c" ""
    else
        c=$(g commit-tree "$tree" -p "$2" -F "$4")
        g update-ref "$1" "$c" "$2"
    fi
    printf '%s\n' "$c"
}

# --------------------------------------------------------------- vault ----

git init -q --bare "$V"
g symbolic-ref HEAD refs/heads/main
mkdir -m 0700 "$V/sprayvault"
(umask 077 && printf '%s\n' "$MACKEY" >"$V/sprayvault/mac-key")

cat >"$W/sprayvault.json" <<EOF
{
  "format": 1,
  "recipients": [
    "$RCPT"
  ],
  "include": [
    "/etc/kubernetes/ssl",
    "/etc/kubernetes/pki",
    "/etc/ssl/etcd/ssl",
    "/usr/local/share/ca-certificates",
    "/etc/etcd.env",
    "/etc/kubernetes/*.conf",
    "/etc/kubernetes/kubeadm-config.yaml"
  ],
  "exclude": []
}
EOF

# Commit 1: init.
printf '%s\n' "$MACKEY" | age -r "$RCPT" -o "$W/mac-key.age"
MACKEY_BLOB=$(g hash-object -w --no-filters "$W/mac-key.age")
start_tree
add_common -
cat >"$W/msg" <<EOF
init: vault for 1 recipient(s)

Sprayvault-Format: 1
Sprayvault-Kind: init
Sprayvault-Finished: $(iso 1763454600)
EOF
C1=$(commit refs/heads/main - 1763454600 "$W/msg")

# Commit 2: first backup, both nodes read.
known_from_parent "$C1"
start_tree
add_common "$C1"
FILES=0 CHANGED=0
add_node node1 "$W/node1.v1" "$C1"
add_node node2 "$W/node2.v1" "$C1"
TREE=control
add_node _control "$W/control.v1" "$C1"
TREE=
cat >"$W/kubespray" <<'EOF'
sprayvault-kubespray 1
dir /home/ops/kubespray
inventory /inventory/mycluster/inventory.ini
ansible-cfg /home/ops/kubespray/ansible.cfg
describe v2.24.0
commit 0123456789abcdef0123456789abcdef01234567
modified no
origin https://github.com/kubernetes-sigs/kubespray.git
changes -
EOF
add_blob "$(g hash-object -w --no-filters "$W/kubespray")" control/kubespray
cat >"$W/msg" <<EOF
backup: 2/2 nodes ok, $FILES files, $CHANGED changed

Sprayvault-Format: 1
Sprayvault-Kind: backup
Sprayvault-Started: $(iso 1763456400)
Sprayvault-Finished: $(iso 1763456406)
Sprayvault-Node: node1 ok
Sprayvault-Node: node2 ok
Sprayvault-Control: ok /home/ops/kubespray v2.24.0 (commit 0123456789, unmodified)
EOF
C2=$(commit refs/heads/main "$C1" 1763456406 "$W/msg")
BLOBS_BACKUP1=$NEW_BLOBS

# Commit 3: node1 has one changed file, node2 is unreachable.
known_from_parent "$C2"
start_tree
add_common "$C2"
FILES=0 CHANGED=0 NEW_BLOBS=0
add_node node1 "$W/node1.v2" "$C2"
carry_node node2 "$C2"
g read-tree -i --prefix=control/ "$(g rev-parse "$C2:control")"
cat >"$W/msg" <<EOF
backup: 1/2 nodes ok, $FILES files, $CHANGED changed

Sprayvault-Format: 1
Sprayvault-Kind: backup
Sprayvault-Started: $(iso 1764036003)
Sprayvault-Finished: $(iso 1764036009)
Sprayvault-Node: node1 ok
Sprayvault-Node: node2 failed ssh: connect to host 10.0.10.12 port 22: Connection refused
EOF
C3=$(commit refs/heads/main "$C2" 1764036009 "$W/msg")
[ "$NEW_BLOBS" -eq 1 ] || die "internal: backup 2 encrypted $NEW_BLOBS blobs, expected 1"

# ------------------------------------------------------- hostile vault ----
# Trees built with mktree, since the index refuses '..' (as it should).

blob() { printf '%s\n' "$1" | age -r "$RCPT" | g hash-object -w --no-filters --stdin; }
mktree() { g mktree; } # stdin: "mode SP type SP oid TAB name" lines

OK_BLOB=$(blob 'harmless')
PWN_BLOB=$(blob 'if you can read this outside OUT_DIR, recover.sh is broken')
T=$(printf '100644 blob %s\t%s\n' "$PWN_BLOB" dotdot-pwned | mktree)
T=$(printf '040000 tree %s\t%s\n' "$T" outside | mktree)
for _ in 1 2 3; do T=$(printf '040000 tree %s\t%s\n' "$T" .. | mktree); done
DOTDOT=$T
T=$(printf '100644 blob %s\t%s\n' "$PWN_BLOB" dot-pwned | mktree)
DOT=$T
THROUGH=$(printf '100644 blob %s\t%s\n' "$PWN_BLOB" through-link-pwned | mktree)
ETC=$(printf '040000 tree %s\t..\n040000 tree %s\t.\n040000 tree %s\tescape\n100644 blob %s\tok.conf\n100644 blob %s\trelative-pwned\n' \
    "$DOTDOT" "$DOT" "$THROUGH" "$OK_BLOB" "$PWN_BLOB" | mktree)
FILES_T=$(printf '040000 tree %s\tetc\n' "$ETC" | mktree)
M=0000000000000000000000000000000000000000000000000000000000000000
L1=1764036100
{
    printf 'sprayvault-manifest 1\n'
    {
        printf 'd\t0755\t0\t0\troot\troot\t0\t%s\t-\t/etc\t-\n' "$L1"
        printf 'f\t0644\t0\t0\troot\troot\t59\t%s\t%s\t/etc/../../../outside/dotdot-pwned\t-\n' "$L1" "$M"
        printf 'f\t0644\t0\t0\troot\troot\t59\t%s\t%s\t/etc/./dot-pwned\t-\n' "$L1" "$M"
        printf 'l\t0777\t0\t0\troot\troot\t%s\t%s\t-\t/etc/escape\t%s\n' "$(($(printf '%s' "$D/outside" | wc -c)))" "$L1" "$D/outside"
        printf 'f\t0644\t0\t0\troot\troot\t59\t%s\t%s\t/etc/escape/through-link-pwned\t-\n' "$L1" "$M"
        printf 'f\t0644\t0\t0\troot\troot\t9\t%s\t%s\t/etc/ok.conf\t-\n' "$L1" "$M"
        printf 'f\t0644\t0\t0\troot\troot\t59\t%s\t%s\tetc/relative-pwned\t-\n' "$L1" "$M"
    } | sort -t "$TAB" -k10,10
} >"$W/evil-manifest"
EVIL=$(printf '100644 blob %s\tmanifest\n040000 tree %s\tfiles\n' "$(g hash-object -w --no-filters "$W/evil-manifest")" "$FILES_T" | mktree)
printf 'sprayvault-manifest 1\nf\t0644\t0\t0\troot\troot\t59\t%s\t%s\t/etc/dotdot-node-pwned\t-\n' "$L1" "$M" >"$W/dd-manifest"
DDF=$(printf '100644 blob %s\tdotdot-node-pwned\n' "$PWN_BLOB" | mktree)
DDF=$(printf '040000 tree %s\tetc\n' "$DDF" | mktree)
DDNODE=$(printf '100644 blob %s\tmanifest\n040000 tree %s\tfiles\n' "$(g hash-object -w --no-filters "$W/dd-manifest")" "$DDF" | mktree)
NODES=$({
    g ls-tree "$C3:nodes"
    printf '040000 tree %s\tevil\n040000 tree %s\t..\n' "$EVIL" "$DDNODE"
} | mktree)
ROOT=$({
    g ls-tree "$C3" | while IFS= read -r line; do
        case $line in *"${TAB}nodes") ;; *) printf '%s\n' "$line" ;; esac
    done
    printf '040000 tree %s\tnodes\n' "$NODES"
} | mktree)
cat >"$W/msg" <<EOF
backup: 3/3 nodes ok, 26 files, 6 changed

Sprayvault-Format: 1
Sprayvault-Kind: backup
Sprayvault-Started: $(iso 1764036100)
Sprayvault-Finished: $(iso 1764036101)
Sprayvault-Node: .. ok
Sprayvault-Node: evil ok
Sprayvault-Node: node1 ok
Sprayvault-Node: node2 ok
EOF
H=$(GIT_AUTHOR_DATE="1764036101 +0000" GIT_COMMITTER_DATE="1764036101 +0000" g commit-tree "$ROOT" -p "$C3" -F "$W/msg")
g update-ref refs/heads/hostile "$H" ""

# ------------------------------------------------------- corrupt vault ----

start_tree
g read-tree "$C3"
g cat-file blob "$C3:nodes/node1/manifest" | tail -n +2 >"$W/body"
{ printf 'sprayvault-manifest 2\n'; cat "$W/body"; } >"$W/m1"
add_blob "$(g hash-object -w --no-filters "$W/m1")" nodes/node1/manifest
g cat-file blob "$C3:nodes/node2/manifest" >"$W/m2src"
n=0
while IFS= read -r line; do
    n=$((n + 1))
    case $n in
        2) printf '%s\n' "$line" | { IFS=$TAB read -r k m u gi o gr s t mac p tg; printf '%s\t%s\t%s\t%s\t%s\t\t%s\t%s\t%s\t%s\t%s\n' "$k" "$m" "$u" "$gi" "$o" "$s" "$t" "$mac" "$p" "$tg"; } ;;
        4) printf '%s\n' "$line" | { IFS=$TAB read -r k m rest; printf '%s\t0899\t%s\n' "$k" "$rest"; } ;;
        *) printf '%s\n' "$line" ;;
    esac
done <"$W/m2src" >"$W/m2"
add_blob "$(g hash-object -w --no-filters "$W/m2")" nodes/node2/manifest
cat >"$W/msg" <<EOF
backup: 2/2 nodes ok, 17 files, 0 changed

Sprayvault-Format: 1
Sprayvault-Kind: backup
Sprayvault-Started: $(iso 1764036200)
Sprayvault-Finished: $(iso 1764036201)
Sprayvault-Node: node1 ok
Sprayvault-Node: node2 ok
EOF
CT=$(g write-tree)
CC=$(GIT_AUTHOR_DATE="1764036201 +0000" GIT_COMMITTER_DATE="1764036201 +0000" g commit-tree "$CT" -p "$C3" -F "$W/msg")
g update-ref refs/heads/corrupt "$CC" ""
unset GIT_INDEX_FILE

# ------------------------------------------------------------ expected ----
# The plaintext state main records, written directly from the descriptions.

: >"$W/dirs"
expect() { # NODE DESCRIPTION
    while read -r kind mode uid gid owner group mtime src path <&3; do
        dest=$E/$1$path
        mkdir -p -- "${dest%/*}"
        case $kind in
            f)
                content "$src" >"$dest"
                chmod "$mode" "$dest"
                touch -h -d "@$mtime" "$dest"
                ;;
            l)
                ln -s -- "$src" "$dest"
                touch -h -d "@$mtime" "$dest"
                ;;
            d)
                mkdir -p -- "$dest"
                printf '%s %s %s\n' "$mode" "$mtime" "$dest" >>"$W/dirs"
                ;;
        esac
    done 3<"$2"
}
expect node1 "$W/node1.v2"
expect node2 "$W/node2.v1"
expect _control "$W/control.v1"
sort -k3 -r "$W/dirs" | while read -r mode mtime dest; do
    chmod "$mode" "$dest"
    touch -h -d "@$mtime" "$dest"
done

cat <<EOF
sample vault: $V
  refs/heads/main    $C3 (init $C1, backup 1 $C2: $BLOBS_BACKUP1 encrypted blobs; backup 2: 1 new encrypted blob)
  refs/heads/hostile $H
  refs/heads/corrupt $CC
identity:       $D/key.txt
wrong identity: $D/wrong-key.txt
expected state: $E
EOF

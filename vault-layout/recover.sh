#!/bin/sh
# recover.sh VAULT_DIR IDENTITY_FILE OUT_DIR [REV]
#
# Restores every node's recorded state from a sprayvault vault (format 1 or 2)
# without sprayvault: only git, age and coreutils are needed. The control
# host's kubespray directory, when the backup has one, goes to OUT_DIR/_control. For the commit
# REV (default refs/heads/main), each node's entries are written below
# OUT_DIR/NODE/<absolute path>: directories, files decrypted with
# IDENTITY_FILE, and symbolic links, with their recorded mode and mtime, and,
# when run as root, their recorded owner and group (by name when that name
# exists on this machine, else by the recorded numeric id).
#
# OUT_DIR must be empty or absent; it and the OUT_DIR/NODE directories are
# created with mode 0700. Nothing is written outside OUT_DIR: node
# names and paths are validated, and no entry is written below a symbolic link.
# Entries that cannot be restored are reported and skipped; the others are
# still restored.
#
# Exit status:
#   0  every entry of every node was restored
#   1  finished, but some nodes or entries were refused or failed (hostile or
#      damaged manifest, missing content, failed decryption, I/O error)
#   2  usage error or unusable input; nothing was written (bad arguments,
#      OUT_DIR not empty, not a git repository, REV not found, not a
#      sprayvault format 1 or 2 commit, a required tool missing, or, with
#      SPRAYVAULT_ALLOWED_SIGNERS, a commit git verify-commit does not accept)
#   3  IDENTITY_FILE cannot decrypt this vault; nothing was written
#
# With SPRAYVAULT_ALLOWED_SIGNERS=FILE (what `sprayvault trust
# --allowed-signers` prints), REV must carry a signature that stock
# `git verify-commit` accepts with that allowed-signers file.
#
# Format specification: vault-layout/README.md. Manual equivalent for one file:
#   git --git-dir VAULT cat-file blob REV:nodes/NODE/files/PATH | age -d -i IDENTITY

set -u
LC_ALL=C
export LC_ALL
umask 077
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_NAMESPACE GIT_REPLACE_REF_BASE
GIT_NO_REPLACE_OBJECTS=1
export GIT_NO_REPLACE_OBJECTS

PROG=recover.sh
TAB=$(printf '\t')
CR=$(printf '\r')
ERRORS=0
NODE_ERRORS=0

usage() {
    cat >&2 <<'EOF'
usage: recover.sh VAULT_DIR IDENTITY_FILE OUT_DIR [REV]

Restores every node of backup REV (default refs/heads/main) of the sprayvault
vault VAULT_DIR into OUT_DIR/NODE/<absolute path>, decrypting with the age
identity (or OpenSSH private key) IDENTITY_FILE. OUT_DIR must be empty or absent.
EOF
    exit 2
}

die() { # CODE MESSAGE
    code=$1
    shift
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit "$code"
}

err() { # MESSAGE
    printf '%s: %s\n' "$PROG" "$*" >&2
    ERRORS=$((ERRORS + 1))
    NODE_ERRORS=$((NODE_ERRORS + 1))
}

warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }

abs() { # PATH -> absolute PATH (not resolved)
    case $1 in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$PWD" "$1" ;;
    esac
}

g() { git --git-dir "$VAULT" "$@"; }

# ------------------------------------------------------------ arguments ----

case ${1:-} in -h | --help) usage ;; esac
[ $# -eq 3 ] || [ $# -eq 4 ] || usage
for tool in git age mktemp mkdir chmod chown chgrp touch mv ln rm tac wc head tail cut tr ls expr id; do
    command -v "$tool" >/dev/null 2>&1 || die 2 "$tool is required but was not found in PATH"
done

VAULT=$(abs "$1")
IDENTITY=$(abs "$2")
OUT=$(abs "$3")
REV=${4:-refs/heads/main}

[ -d "$VAULT" ] || die 2 "vault $VAULT: no such directory"
g rev-parse --git-dir >/dev/null 2>&1 || die 2 "vault $VAULT is not a git repository"
[ -f "$IDENTITY" ] && [ -r "$IDENTITY" ] || die 2 "identity file $IDENTITY cannot be read"
case $REV in
    -*) die 2 "revision $REV is not a revision" ;;
esac
COMMIT=$(g rev-parse --verify --quiet "$REV^{commit}" 2>/dev/null) ||
    die 2 "revision $REV not found in $VAULT (try refs/heads/main, main~1, or a commit id from: git --git-dir $VAULT log --oneline)"
SHORT=$(printf '%s' "$COMMIT" | cut -c1-10)

if [ -e "$OUT" ] || [ -L "$OUT" ]; then
    [ -d "$OUT" ] || die 2 "$OUT exists and is not a directory"
    [ -z "$(ls -A -- "$OUT")" ] || die 2 "$OUT is not empty; give an empty or new directory"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/recover.XXXXXX") || die 2 "cannot create a temporary directory"
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------- commit and identity ----

g cat-file blob "$COMMIT:sprayvault.json" >"$WORK/config" 2>/dev/null ||
    die 2 "commit $SHORT ($REV) has no sprayvault.json: not a sprayvault backup"
case $(tr -d ' \t\r\n' <"$WORK/config") in
    *'"format":1,'* | *'"format":1}'* | *'"format":2,'* | *'"format":2}'*) ;;
    *) die 2 "commit $SHORT: sprayvault.json does not say \"format\": 1 or 2; this recover.sh reads vault formats 1 and 2 only" ;;
esac

if [ -n "${SPRAYVAULT_ALLOWED_SIGNERS:-}" ]; then
    [ -r "$SPRAYVAULT_ALLOWED_SIGNERS" ] ||
        die 2 "allowed-signers file $SPRAYVAULT_ALLOWED_SIGNERS cannot be read"
    g -c gpg.format=ssh -c gpg.ssh.allowedSignersFile="$SPRAYVAULT_ALLOWED_SIGNERS" \
        verify-commit "$COMMIT" >/dev/null 2>"$WORK/verify.err" ||
        die 2 "commit $SHORT ($REV) is not signed by the vault's signer in $SPRAYVAULT_ALLOWED_SIGNERS: $(head -n 1 "$WORK/verify.err"); compare with another copy of the vault"
fi

if g cat-file blob "$COMMIT:mac-key.age" >"$WORK/mac-key.age" 2>/dev/null; then
    if ! age -d -i "$IDENTITY" -o /dev/null "$WORK/mac-key.age" </dev/null 2>"$WORK/age.err"; then
        die 3 "identity $IDENTITY cannot decrypt this vault (mac-key.age of $SHORT): $(head -n 1 "$WORK/age.err"); give the identity matching one of the recipients in sprayvault.json"
    fi
else
    warn "commit $SHORT has no mac-key.age; the identity is checked file by file"
fi

# ----------------------------------------------------------- validation ----

# ^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$
valid_node_name() {
    case $1 in
        [A-Za-z0-9]*) ;;
        *) return 1 ;;
    esac
    case $1 in
        *[!A-Za-z0-9._-]*) return 1 ;;
    esac
    [ ${#1} -le 253 ]
}

# Prints why PATH is not an absolute, normalized, recordable path.
path_problem() {
    case $1 in
        /*) ;;
        *) echo "it is not absolute" && return ;;
    esac
    case $1 in
        / ) echo "the root directory cannot be recorded" && return ;;
        */) echo "it ends with '/'" && return ;;
        *//*) echo "it contains '//'" && return ;;
        */. | */./* | */.. | */../*) echo "it contains a '.' or '..' component" && return ;;
        */.git | */.git/*) echo "it contains a '.git' component" && return ;;
        *[[:cntrl:]]*) echo "it contains a control character" && return ;;
    esac
    [ ${#1} -le 4096 ] || echo "it is longer than 4096 bytes"
}

is_uint() {
    case $1 in '' | *[!0-9]*) return 1 ;; esac
    [ ${#1} -le 20 ]
}

# Creates the missing parent directories of PATH below ROOT (0755, root:root
# when running as root), refusing to pass through anything that is not a real
# directory: in particular a symbolic link an earlier entry created.
make_parents() { # ROOT PATH
    rest=${2#/}
    cur=
    while :; do
        case $rest in
            */*)
                comp=${rest%%/*}
                rest=${rest#*/}
                ;;
            *) return 0 ;;
        esac
        cur=$cur/$comp
        dir=$1$cur
        if [ -L "$dir" ]; then
            PROBLEM="$cur is a symbolic link; refusing to write through it"
            return 1
        elif [ -d "$dir" ]; then
            :
        elif [ -e "$dir" ]; then
            PROBLEM="$cur exists and is not a directory"
            return 1
        else
            if ! mkdir -- "$dir" 2>"$WORK/err" || ! chmod 0755 -- "$dir" 2>>"$WORK/err"; then
                PROBLEM="cannot create $cur: $(head -n 1 "$WORK/err")"
                return 1
            fi
            if [ "$AS_ROOT" = yes ]; then
                chown -h 0:0 -- "$dir" 2>/dev/null
            fi
        fi
    done
}

# Applies the recorded owner and group: by name when the name exists here,
# else by the recorded numeric id. Only when running as root.
set_owner() { # FILE OWNER GROUP UID GID
    [ "$AS_ROOT" = yes ] || return 0
    ok=yes
    case $2 in
        - | *:*) chown -h -- "+$4" "$1" 2>"$WORK/err" || ok=no ;;
        *) chown -h -- "$2" "$1" 2>/dev/null || chown -h -- "+$4" "$1" 2>"$WORK/err" || ok=no ;;
    esac
    case $3 in
        -) chgrp -h -- "+$5" "$1" 2>>"$WORK/err" || ok=no ;;
        *) chgrp -h -- "$3" "$1" 2>/dev/null || chgrp -h -- "+$5" "$1" 2>>"$WORK/err" || ok=no ;;
    esac
    [ "$ok" = yes ] || PROBLEM="cannot set owner/group: $(head -n 1 "$WORK/err")"
    [ "$ok" = yes ]
}

# ------------------------------------------------------------- restoring ----

if [ "$(id -u)" = 0 ]; then AS_ROOT=yes; else AS_ROOT=no; fi

# Restores one manifest line (already split into the positional fields).
restore_entry() { # NODE ROOT KIND MODE UID GID OWNER GROUP SIZE MTIME PATH TARGET
    node=$1 root=$2 kind=$3 mode=$4 uid=$5 gid=$6 owner=$7 group=$8 size=$9
    shift 9
    mtime=$1 path=$2 target=$3
    dest=$root$path
    PROBLEM=
    if ! make_parents "$root" "$path"; then
        err "$node: $path: $PROBLEM"
        return
    fi
    if [ -e "$dest" ] || [ -L "$dest" ]; then
        if [ "$kind" = d ] && [ -d "$dest" ] && [ ! -L "$dest" ]; then
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$node" "$mode" "$uid" "$gid" "$owner" "$group" "$mtime" "$path" >>"$WORK/dirs"
            return
        fi
        err "$node: $path: already exists in $OUT (entry recorded twice?); skipped"
        return
    fi
    case $kind in
        d)
            # Owner-writable until every entry is in place; the recorded mode
            # and mtime are applied at the end, deepest first.
            if ! mkdir -- "$dest" 2>"$WORK/err" || ! chmod 0700 -- "$dest"; then
                err "$node: $path: cannot create directory: $(head -n 1 "$WORK/err")"
                return
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$node" "$mode" "$uid" "$gid" "$owner" "$group" "$mtime" "$path" >>"$WORK/dirs"
            ;;
        f)
            if ! g cat-file blob "$COMMIT:$TREE/files$path" >"$WORK/cipher" 2>/dev/null; then
                err "$node: $path: no content at $TREE/files$path in $SHORT (damaged backup); skipped"
                return
            fi
            if ! tmp=$(mktemp "${dest%/*}/.recover.XXXXXXXX" 2>"$WORK/err"); then
                err "$node: $path: cannot create a temporary file: $(head -n 1 "$WORK/err")"
                return
            fi
            if ! age -d -i "$IDENTITY" -o "$tmp" "$WORK/cipher" </dev/null 2>"$WORK/err"; then
                rm -f -- "$tmp"
                err "$node: $path: cannot decrypt: $(head -n 1 "$WORK/err") (wrong identity, or the object is damaged)"
                return
            fi
            got=$(($(wc -c <"$tmp")))
            if [ "$got" != "$size" ]; then
                err "$node: $path: decrypted $got bytes but the manifest records $size (restored anyway)"
            fi
            if ! set_owner "$tmp" "$owner" "$group" "$uid" "$gid"; then
                err "$node: $path: $PROBLEM"
            fi
            # After chown, which clears set-id bits.
            if ! chmod "$mode" -- "$tmp" 2>"$WORK/err" ||
                ! touch -h -d "@$mtime" -- "$tmp" 2>>"$WORK/err" ||
                ! mv -f -- "$tmp" "$dest" 2>>"$WORK/err"; then
                rm -f -- "$tmp"
                err "$node: $path: $(head -n 1 "$WORK/err")"
                return
            fi
            ;;
        l)
            if ! ln -s -- "$target" "$dest" 2>"$WORK/err"; then
                err "$node: $path: cannot create symbolic link: $(head -n 1 "$WORK/err")"
                return
            fi
            if ! set_owner "$dest" "$owner" "$group" "$uid" "$gid"; then
                err "$node: $path: $PROBLEM"
            fi
            touch -h -d "@$mtime" -- "$dest" 2>/dev/null ||
                err "$node: $path: cannot set the modification time of the link"
            ;;
    esac
}

restore_node() { # NODE [TREE]: TREE defaults to nodes/NODE
    node=$1
    TREE=${2:-nodes/$1}
    root=$OUT/$node
    NODE_ERRORS=0
    if ! g cat-file blob "$COMMIT:$TREE/manifest" >"$WORK/manifest" 2>/dev/null; then
        err "$node: $TREE/manifest is missing in $SHORT; node skipped"
        return
    fi
    IFS= read -r header <"$WORK/manifest" || :
    if [ "$header" != "sprayvault-manifest 1" ]; then
        err "$node: manifest header is \"$header\", not \"sprayvault-manifest 1\" (newer format or damaged); node skipped"
        return
    fi
    if [ -n "$(tail -c 1 "$WORK/manifest")" ]; then
        err "$node: manifest does not end with a newline (damaged?)"
    fi
    if ! mkdir -- "$root" 2>"$WORK/err"; then
        err "$node: cannot create $root: $(head -n 1 "$WORK/err"); node skipped"
        return
    fi
    files_blobs=$(g ls-tree -r "$COMMIT:$TREE/files" 2>/dev/null | wc -l)
    files_entries=0
    entries=0
    lineno=1
    prev=
    {
        IFS= read -r _ <&3
        while IFS= read -r line <&3 || [ -n "$line" ]; do
            lineno=$((lineno + 1))
            entries=$((entries + 1))
            at="$node: manifest line $lineno"
            case $line in
                '') err "$at: empty line; skipped" && continue ;;
                *"$CR"*) err "$at: contains a carriage return (CRLF line endings?); skipped" && continue ;;
                "$TAB"* | *"$TAB" | *"$TAB$TAB"*) err "$at: empty field (none is written '-'); skipped" && continue ;;
            esac
            saved_ifs=$IFS
            IFS=$TAB
            set -f
            # shellcheck disable=SC2086 # splitting on TAB is the point
            set -- $line
            set +f
            IFS=$saved_ifs
            if [ $# -ne 11 ]; then
                err "$at: expected 11 TAB-separated fields, found $#; skipped"
                continue
            fi
            kind=$1 mode=$2 uid=$3 gid=$4 owner=$5 group=$6 size=$7 mtime=$8 mac=$9
            shift 9
            path=$1 target=$2
            why=
            case $kind in f | d | l) ;; *) why="unknown kind \"$kind\"" ;; esac
            case $mode in [0-7][0-7][0-7][0-7]) ;; *) why=${why:-"mode \"$mode\" is not 4 octal digits"} ;; esac
            is_uint "$uid" || why=${why:-"uid \"$uid\" is not a number"}
            is_uint "$gid" || why=${why:-"gid \"$gid\" is not a number"}
            is_uint "$size" || why=${why:-"size \"$size\" is not a number"}
            is_uint "${mtime#-}" || why=${why:-"mtime \"$mtime\" is not a number"}
            if [ "$kind" = f ]; then
                case $mac in *[!0-9a-f]*) why=${why:-"a file needs a 64-hex-digit mac"} ;; esac
                [ ${#mac} -eq 64 ] || why=${why:-"a file needs a 64-hex-digit mac"}
                files_entries=$((files_entries + 1))
            elif [ "$mac" != - ]; then
                why=${why:-"only files have a mac"}
            fi
            if [ "$kind" = l ]; then
                case $target in -) why=${why:-"a symlink needs a target"} ;; *[[:cntrl:]]*) why=${why:-"the link target contains a control character"} ;; esac
            elif [ "$target" != - ]; then
                why=${why:-"only symlinks have a target"}
            fi
            if [ -n "$why" ]; then
                err "$at: $why; skipped"
                continue
            fi
            problem=$(path_problem "$path")
            if [ -n "$problem" ]; then
                err "$at: refusing path \"$path\": $problem"
                continue
            fi
            if [ -n "$prev" ] && [ "$(expr "x$prev" \< "x$path")" != 1 ]; then
                err "$at: path \"$path\" is out of order or repeated; skipped"
                continue
            fi
            prev=$path
            restore_entry "$node" "$root" "$kind" "$mode" "$uid" "$gid" "$owner" "$group" "$size" "$mtime" "$path" "$target"
        done
    } 3<"$WORK/manifest"
    if [ "$files_blobs" -ne "$files_entries" ]; then
        warn "$node: $TREE/files holds $files_blobs blobs for $files_entries file entries; only manifest entries are restored"
    fi
    if [ "$NODE_ERRORS" -eq 0 ]; then
        printf '%s: %d entries\n' "$node" "$entries" >&2
    else
        printf '%s: %d entries, %d errors\n' "$node" "$entries" "$NODE_ERRORS" >&2
    fi
}

mkdir -p -- "$OUT" || die 2 "cannot create $OUT"
: >"$WORK/dirs"
[ "$AS_ROOT" = yes ] || warn "not running as root: owners and groups are not applied"

NODES=0
if g cat-file -e "$COMMIT:nodes" 2>/dev/null; then
    g ls-tree "$COMMIT:nodes" >"$WORK/nodes" || die 2 "cannot list nodes/ of $SHORT"
else
    : >"$WORK/nodes"
fi
while IFS= read -r entry <&4; do
    meta=${entry%%"$TAB"*}
    name=${entry#*"$TAB"}
    if ! valid_node_name "$name"; then
        err "refusing node name \"$name\": it must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,252}\$"
        continue
    fi
    case $meta in
        *' tree '*) ;;
        *)
            err "nodes/$name is not a directory; skipped"
            continue
            ;;
    esac
    NODES=$((NODES + 1))
    restore_node "$name"
done 4<"$WORK/nodes"

# The control host (control/): OUT_DIR/_control stands for the kubespray
# directory ("_" starts no node name); its local changes go to
# OUT_DIR/_control.patch.
if g cat-file -e "$COMMIT:control/manifest" 2>/dev/null; then
    restore_node _control control
    describe=- kcommit=-
    if g cat-file blob "$COMMIT:control/kubespray" >"$WORK/kubespray" 2>/dev/null &&
        [ "$(head -n 1 "$WORK/kubespray")" = "sprayvault-kubespray 1" ]; then
        while IFS=' ' read -r key value; do
            case $key in
                describe) describe=$value ;;
                commit) kcommit=$value ;;
            esac
        done <"$WORK/kubespray"
    else
        err "_control: control/kubespray is missing or not \"sprayvault-kubespray 1\""
    fi
    what=$describe
    case $describe in -* | *-[0-9]*-g[0-9a-f]* | *[!A-Za-z0-9._/+-]*) what=$kcommit ;; esac
    case $what in
        - | *[!A-Za-z0-9._/+-]*) ;;
        *) printf '%s: kubespray was at %s (commit %s); check out the same version with: git -C %s checkout %s\n' \
            "$PROG" "$describe" "$kcommit" "$OUT/_control" "$what" >&2 ;;
    esac
    if g cat-file -e "$COMMIT:control/changes" 2>/dev/null; then
        if g cat-file blob "$COMMIT:control/changes" >"$WORK/cipher" 2>/dev/null &&
            age -d -i "$IDENTITY" -o "$OUT/_control.patch" "$WORK/cipher" </dev/null 2>"$WORK/err"; then
            printf '%s: the checkout'"'"'s local changes are in %s (git apply)\n' "$PROG" "$OUT/_control.patch" >&2
        else
            err "_control: cannot decrypt control/changes: $(head -n 1 "$WORK/err")"
        fi
    fi
fi

# Directory modes and mtimes last, deepest first, so that a 0500 directory
# did not block writing its entries and writing them did not change its mtime.
tac "$WORK/dirs" >"$WORK/dirs.rev"
while IFS="$TAB" read -r node mode uid gid owner group mtime path <&5; do
    dest=$OUT/$node$path
    NODE_ERRORS=0
    PROBLEM=
    set_owner "$dest" "$owner" "$group" "$uid" "$gid" || err "$node: $path: $PROBLEM"
    chmod "$mode" -- "$dest" 2>"$WORK/err" || err "$node: $path: $(head -n 1 "$WORK/err")"
    touch -h -d "@$mtime" -- "$dest" 2>"$WORK/err" || err "$node: $path: $(head -n 1 "$WORK/err")"
done 5<"$WORK/dirs.rev"

# etcd snapshots (every ref under refs/sprayvault/etcd/, whatever REV):
# OUT_DIR/etcd/<name>.db, reassembled from the chunks its `snapshot` index
# lists (versions 1 and 2) or from the units of packs its page map lists
# (version 3), then checked against etcd's sha256 trailer.
SNAPS=0
g for-each-ref --format='%(refname)' refs/sprayvault/etcd/ >"$WORK/snaps"
while IFS= read -r ref <&6; do
    name=${ref#refs/sprayvault/etcd/}
    case $name in
        '' | .* | *[!A-Za-z0-9._-]*) err "refusing snapshot ref $ref"; continue ;;
    esac
    mkdir -p -- "$OUT/etcd"
    dest=$OUT/etcd/$name.db
    # Index versions 1 and 2 (which adds the etcd and hashkv lines) list
    # their chunks alike; version 3 names a page map instead.
    if ! g cat-file blob "$ref:snapshot" >"$WORK/snapshot" 2>/dev/null ||
       ! head -n 1 "$WORK/snapshot" | grep -qx 'sprayvault-etcd-snapshot [123]'; then
        err "etcd snapshot $name: no valid snapshot index"
        continue
    fi
    ( umask 077; : >"$dest.part" )
    ok=1
    if head -n 1 "$WORK/snapshot" | grep -qx 'sprayvault-etcd-snapshot 3'; then
        # The page map: a `pack BYTES` line for each pack of the tree, in
        # the order of their macs (numbered from 0), then `run PACK FIRST
        # COUNT` lines in file order, each 4096-byte units FIRST.. of that
        # pack. The pack last decrypted is kept for the next run, in the
        # work directory (removed on exit).
        if g cat-file blob "$ref:map" | age -d -i "$IDENTITY" | gzip -dc >"$WORK/map" &&
           head -n 1 "$WORK/map" | grep -qx 'sprayvault-etcd-pages 1' &&
           g ls-tree -r --name-only "$ref:packs" >"$WORK/packs" &&
           [ "$(grep -c '^pack ' "$WORK/map")" = "$(wc -l <"$WORK/packs" | tr -d ' ')" ]; then
            held=
            grep '^run ' "$WORK/map" | while read -r _ pack first count; do
                case $pack$first$count in *[!0-9]*) exit 1 ;; esac
                path=$(sed -n "$((pack + 1))p" "$WORK/packs")
                case $path in [0-9a-f][0-9a-f]/[0-9a-f]*) ;; *) exit 1 ;; esac
                case $path in */*[!0-9a-f]*) exit 1 ;; esac
                if [ "$path" != "$held" ]; then
                    g cat-file blob "$ref:packs/$path" | age -d -i "$IDENTITY" | gzip -dc >"$WORK/pack" || exit 1
                    held=$path
                fi
                dd if="$WORK/pack" bs=4096 skip="$first" count="$count" 2>/dev/null >>"$dest.part" || exit 1
            done || ok=0
        else
            ok=0
        fi
    else
        grep '^chunk ' "$WORK/snapshot" | while read -r _ mac size; do
            g cat-file blob "$ref:chunks/$mac" | age -d -i "$IDENTITY" | gzip -dc >>"$dest.part" || exit 1
        done || ok=0
    fi
    want=$(sed -n 's/^size //p' "$WORK/snapshot")
    got=$(wc -c <"$dest.part" | tr -d ' ')
    if [ "$ok" = 1 ] && [ "$got" = "$want" ] && [ "$got" -gt 32 ]; then
        body=$((got - 32))
        sum=$(head -c "$body" "$dest.part" | sha256sum | cut -d' ' -f1)
        trailer=$(tail -c 32 "$dest.part" | od -An -tx1 | tr -d ' \n')
        if [ "$sum" = "$trailer" ]; then
            mv -- "$dest.part" "$dest"
            SNAPS=$((SNAPS + 1))
            continue
        fi
    fi
    rm -f -- "$dest.part"
    err "etcd snapshot $name: reassembly failed or does not match its sha256 trailer"
done 6<"$WORK/snaps"
[ "$SNAPS" -gt 0 ] && printf '%s: reassembled %d etcd snapshot(s) into %s/etcd\n' "$PROG" "$SNAPS" "$OUT" >&2

if [ "$NODES" -eq 0 ] && [ "$ERRORS" -eq 0 ]; then
    warn "commit $SHORT records no nodes"
fi
if [ "$ERRORS" -gt 0 ]; then
    printf '%s: restored %d node(s) of %s into %s with %d error(s)\n' "$PROG" "$NODES" "$SHORT" "$OUT" "$ERRORS" >&2
    exit 1
fi
printf '%s: restored %d node(s) of %s into %s\n' "$PROG" "$NODES" "$SHORT" "$OUT" >&2
exit 0

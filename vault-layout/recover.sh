#!/bin/sh
# recover.sh VAULT_DIR IDENTITY_FILE OUT_DIR [REV]
#
# Restores every node's files of one backup into OUT_DIR/NODE/<absolute path>
# using only POSIX sh, git, age and coreutils: the vault stays recoverable
# without sprayvault. REV defaults to refs/heads/main. See README.md beside
# this file for the format it reads.
#
# Exit status: 0 when every entry was recovered; 1 when some entry could not
# be (each is named on stderr); 2 on bad arguments, a missing revision, a
# damaged manifest, or an identity that cannot decrypt.
set -eu

die() { echo "recover.sh: $*" >&2; exit 2; }

[ $# -ge 3 ] && [ $# -le 4 ] || die "usage: recover.sh VAULT_DIR IDENTITY_FILE OUT_DIR [REV]"
vault=$1 identity=$2 out=$3 rev=${4:-refs/heads/main}
command -v git >/dev/null || die "git is not installed"
command -v age >/dev/null || die "age is not installed"
[ -r "$identity" ] || die "cannot read identity file $identity"
git --git-dir="$vault" rev-parse --verify -q "$rev^{commit}" >/dev/null || die "no revision $rev in $vault"
commit=$(git --git-dir="$vault" rev-parse "$rev^{commit}")
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then die "$out exists and is not empty"; fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

tab=$(printf '\t')
failed=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dirs=$work/dirs
: > "$dirs"

fail() { echo "recover.sh: $node: $1" >&2; failed=1; }

# A path is acceptable when absolute and free of empty, '.' and '..' components.
valid_path() {
  case $1 in
    /*) ;;
    *) return 1 ;;
  esac
  case "$1/" in
    *//* | */./* | */../*) return 1 ;;
  esac
  return 0
}

# Refuses to write below a symlink that an earlier entry created.
no_link_parent() {
  p=$(dirname "$1")
  while [ "$p" != "$out/$node" ] && [ "$p" != "/" ]; do
    [ -L "$p" ] && return 1
    p=$(dirname "$p")
  done
  return 0
}

git --git-dir="$vault" ls-tree --name-only "$commit" nodes/ > "$work/nodes"
while IFS= read -r entry; do
  node=${entry#nodes/}
  case $node in
    '' | -* | .* | *[!A-Za-z0-9._-]*) echo "recover.sh: skipping node with unsafe name $node" >&2; failed=1; continue ;;
  esac
  git --git-dir="$vault" cat-file blob "$commit:nodes/$node/manifest" > "$work/manifest" || die "$node: no manifest"
  header=$(head -n 1 "$work/manifest")
  [ "$header" = "sprayvault-manifest 1" ] || die "$node: manifest header is '$header', not 'sprayvault-manifest 1'"
  count=0
  mkdir -p "$out/$node"
  tail -n +2 "$work/manifest" > "$work/entries"
  while IFS="$tab" read -r kind mode uid gid owner group size mtime mac path target; do
    count=$((count + 1))
    if ! valid_path "$path"; then fail "refusing unsafe path $path"; continue; fi
    dest="$out/$node$path"
    if ! no_link_parent "$dest"; then fail "refusing to write $path below a symlink"; continue; fi
    mkdir -p "$(dirname "$dest")"
    case $kind in
      d)
        mkdir -p "$dest"
        printf '%s\t%s\t%s\n' "$dest" "$mode" "$mtime" >> "$dirs"
        ;;
      f)
        if ! git --git-dir="$vault" cat-file blob "$commit:nodes/$node/files$path" > "$work/blob"; then
          fail "$path: content object missing"; continue
        fi
        ( umask 077; age -d -i "$identity" -o "$dest" "$work/blob" ) || {
          rm -f "$dest"; die "$node: cannot decrypt $path with $identity"; }
        chmod "$mode" "$dest"
        touch -d "@$mtime" "$dest"
        ;;
      l)
        ln -s "$target" "$dest"
        touch -h -d "@$mtime" "$dest" 2>/dev/null || true
        ;;
      *) fail "unknown entry kind '$kind' for $path"; continue ;;
    esac
    if [ "$(id -u)" = 0 ]; then
      u=$uid; g=$gid
      if [ "$owner" != - ] && id -u "$owner" >/dev/null 2>&1; then u=$owner; fi
      if [ "$group" != - ] && getent group "$group" >/dev/null 2>&1; then g=$group; fi
      chown -h "$u:$g" "$dest"
    fi
  done < "$work/entries"
  echo "$node: $count entries" >&2
done < "$work/nodes"

# Directory modes and times last, deepest first, so that a 0500 directory
# did not block writing its content.
sort -r "$dirs" > "$work/dirs-sorted"
while IFS="$tab" read -r dest mode mtime; do
  chmod "$mode" "$dest"
  touch -d "@$mtime" "$dest"
done < "$work/dirs-sorted"

exit "$failed"

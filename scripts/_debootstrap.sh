# Sourced by the scripts that build cached Debian test roots: debootstraps bookworm (minbase,
# plus $1 as --include when given) into "$root", a scratch folder removed (with its /proc
# unmounted) when the script exits. Uses the host's apt mirror when it has one.
# Sets: mirror, work, root. Defines in_root: a command inside the root with a clean environment
# (the test run's TMPDIR and friends name folders that do not exist in there).
mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
mirror="${mirror:-http://deb.debian.org/debian}"
work="$(mktemp -d)"
trap 'umount -l "$work/root/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
root="$work/root"
echo "$(basename "$0" .sh): debootstrap bookworm from $mirror" >&2
CLEAN_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive)
in_root() { "${CLEAN_ENV[@]}" chroot "$root" "$@"; }
"${CLEAN_ENV[@]}" debootstrap --variant=minbase ${1:+--include="$1"} bookworm "$root" "$mirror" >&2

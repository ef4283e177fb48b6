# Sourced by the scripts that need a tool from the crates registry (check-structure.sh,
# docs.sh, fuzz.sh): `install_pinned CRATE VERSION ROOT [cargo install flags...]` installs that
# exact version into ROOT (ROOT/bin/CRATE...) unless cargo's record of ROOT says it is there.
install_pinned() {
    local crate=$1 version=$2 root=$3
    shift 3
    if cargo install --list --root "$root" 2>/dev/null | grep -qx "$crate v$version:"; then
        echo "$crate $version: ok"
    else
        local start=$SECONDS
        cargo install --quiet --locked --force "$crate" --version "=$version" --root "$root" "$@"
        echo "$crate $version: installed in $((SECONDS - start)) s"
    fi
}

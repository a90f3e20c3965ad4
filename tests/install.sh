#!/usr/bin/env bash
# tests/install.sh: attn installs as a C library should. Usage: bash tests/install.sh BUILD_DIR
#
#  1. cmake --install BUILD_DIR into a temporary prefix. The README's example (examples/attend.c)
#     is built against it with pkg-config, shared and -static, and with find_package(attn) from
#     a tiny CMake project (tests/install/), shared and static: each runs and prints what the
#     build's own example_attend prints. The installed attn command: --version, the shipped
#     model translates, man -l reads every page, the bash completion completes.
#  2. cpack -G DEB in BUILD_DIR: the packages' contents, SONAME, shlibs and dependencies
#     (dpkg-deb), then both unpacked with dpkg -x into a throwaway root, where the command runs,
#     the man page reads and the example builds with pkg-config (attn.pc is relocatable).
# Skipped (77) in a sanitizer build (its objects need the sanitizer runtime) or where a tool is
# missing (tools/install-deps.sh installs them). Prints "N passed, N failed" last.
set -u
build=$(cd "${1:?usage: install.sh BUILD_DIR}" && pwd) || exit 2
src=$(cd "$(dirname "$0")/.." && pwd)
if [ "${ATTN_SANITIZED:-0}" = 1 ]; then
    echo "SKIP: a sanitizer build; the install is tested in the Release build"
    exit 77
fi
CC=${CC:-cc}
for t in "$CC" pkg-config cmake cpack man dpkg-deb dpkg-shlibdeps file readelf; do
    command -v "$t" >/dev/null || { echo "SKIP: $t not found (tools/install-deps.sh installs it)"; exit 77; }
done
[ -f "$build/man/man1/attn.1.gz" ] || { echo "SKIP: no man pages in $build (help2man was missing at configure time)"; exit 77; }

T=$(mktemp -d "$build/install-test.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
version=$(sed -n 's/^#define ATTN_VERSION_STRING "\(.*\)"/\1/p' "$src/include/attn/core.h")
major=${version%%.*} minor=${version#*.} minor=${minor%%.*}
soversion=$major
[ "$major" = 0 ] && soversion=$major.$minor
example=$src/examples/attend.c
expected=$("$build/example_attend") || { echo "FAIL: the build's example_attend does not run"; exit 1; }
npass=0
nfail=0

# check NAME COMMAND...: COMMAND succeeds; its output is shown on failure.
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        npass=$((npass + 1))
    else
        nfail=$((nfail + 1))
        printf 'FAIL: %s\n  $ %s\n%s\n' "$name" "$*" "$(head -20 <<<"$out")"
    fi
}
# runs_example NAME PROGRAM: PROGRAM prints what the build's example_attend prints.
runs_example() { check "$1" bash -c '[ "$("$1")" = "$2" ]' _ "$2" "$expected"; }
# has LIST PATTERN...: every extended regex PATTERN matches a line of the file LIST.
has() {
    local list=$1 p
    shift
    for p in "$@"; do grep -Eq -- "$p" "$list" || { echo "missing: $p"; return 1; }; done
}

# pkg_build LIBDIR OUT: the example, as OUT-shared and OUT-static, against LIBDIR/pkgconfig/attn.pc:
# shared (with an rpath to that libdir, which ldd must show) and static.
pkg_build() {
    local libdir=$1 out=$2
    export PKG_CONFIG_PATH=$libdir/pkgconfig
    check "pkg-config knows attn $version ($libdir)" bash -c '[ "$(pkg-config --modversion attn)" = "$1" ]' _ "$version"
    check "pkg-config shared build" bash -c '$0 "$1" $(pkg-config --cflags --libs attn) -Wl,-rpath,"$2" -o "$3"' \
        "$CC" "$example" "$libdir" "$out-shared"
    runs_example "pkg-config shared example runs" "$out-shared"
    check "pkg-config shared example uses $libdir/libattn.so.$soversion" \
        bash -c 'ldd "$1" | grep -q "libattn.so.$2 => $3/libattn.so.$2"' _ "$out-shared" "$soversion" "$libdir"
    if grep -q 'ompi-c' "$libdir/pkgconfig/attn.pc"; then
        # built with MPI: OpenMPI has no static library (Debian ships libmpi.so alone), so no
        # -static; libattn.a itself, with the system's shared libraries
        check "pkg-config static libattn build (MPI: no -static)" bash -c \
            '$0 "$1" $(pkg-config --static --cflags --libs attn | sed -E "s#(^| )-lattn( |\$)#\\1$2/libattn.a\\2#") -o "$3"' \
            "$CC" "$example" "$libdir" "$out-static"
        runs_example "pkg-config static example runs" "$out-static"
        check "the static example needs no libattn.so" bash -c '! readelf -d "$1" | grep -q "NEEDED.*libattn"' _ "$out-static"
    else
        check "pkg-config static build (-static)" bash -c '$0 "$1" $(pkg-config --static --cflags --libs attn) -static -o "$2"' \
            "$CC" "$example" "$out-static"
        runs_example "pkg-config static example runs" "$out-static"
        check "the static example needs no shared library" bash -c '! readelf -d "$1" | grep -q NEEDED' _ "$out-static"
    fi
    unset PKG_CONFIG_PATH
}

# man_pages DIR ATTN: man -l reads attn(1) and one page per command of ATTN --help (listed by
# the bash completion's reader of help texts).
. "$src/packaging/attn.bash"
man_pages() {
    local dir=$1 attn=$2 cmd
    check "man -l attn.1.gz" bash -c 'MANWIDTH=80 man -l "$1" | grep -q "attn-translate(1)"' _ "$dir/attn.1.gz"
    for cmd in $("$attn" --help | _attn_list 'commands|utilities' | cut -f1); do
        check "man -l attn-$cmd.1.gz" bash -c 'MANWIDTH=80 man -l "$1" | grep -q "attn $2"' _ "$dir/attn-$cmd.1.gz" "$cmd"
    done
}

# 1. cmake --install into a temporary prefix.
P=$T/prefix
check "cmake --install --prefix" cmake --install "$build" --prefix "$P"
libdir=$(dirname "$(find "$P" -name attn.pc)")
libdir=${libdir%/pkgconfig}
pkg_build "$libdir" "$T/pc"
check "find_package(attn) configure" cmake -S "$src/tests/install" -B "$T/fp" -DCMAKE_PREFIX_PATH="$P" \
    -DCMAKE_C_COMPILER="$CC" -DATTN_VERSION="$version" -DATTN_EXAMPLE="$example" -DCMAKE_BUILD_TYPE=Release
check "find_package(attn) build" cmake --build "$T/fp"
runs_example "find_package attn::attn example runs" "$T/fp/attend_shared"
runs_example "find_package attn::attn_static example runs" "$T/fp/attend_static"
check "attn::attn is the installed shared library" bash -c 'ldd "$1" | grep -q "$2/libattn.so"' _ "$T/fp/attend_shared" "$libdir"
check "find_package(attn 99) refuses" bash -c '! cmake -S "$1" -B "$2" -DCMAKE_PREFIX_PATH="$3" -DATTN_VERSION=99 -DATTN_EXAMPLE="$4"' \
    _ "$src/tests/install" "$T/fp99" "$P" "$example"
check "installed attn --version" bash -c '[ "$("$1" --version | cut -d" " -f1-2)" = "attn $2" ]' _ "$P/bin/attn" "$version"
check "installed model translates" bash -c '[ "$("$1" translate --model "$2" "我爱你。")" = "I love you." ]' \
    _ "$P/bin/attn" "$P/share/attn/models/zh-en-small"
man_pages "$P/share/man/man1" "$P/bin/attn"
# complete WORDS... EXPECTED: the bash completion of the last word offers EXPECTED.
complete_has() {
    check "completion of '${*:1:$#-1}'" bash -c '. "$1"; shift; exp=${@: -1}; COMP_WORDS=("${@:1:$#-1}")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _attn; printf "%s\n" "${COMPREPLY[@]}" | grep -qx -- "$exp"' \
        _ "$P/share/bash-completion/completions/attn" "$@"
}
complete_has "$P/bin/attn" tr translate
complete_has "$P/bin/attn" translate --mo --model
complete_has "$P/bin/attn" train s seq2seq
complete_has "$P/bin/attn" train seq2seq --att --attention

# 2. The Debian packages.
D=$T/deb
check "cpack -G DEB" cpack --config "$build/CPackConfig.cmake" -B "$D"
run=$(ls "$D"/attn_"$version"_*.deb 2>/dev/null | head -1)
dev=$(ls "$D"/attn-dev_"$version"_*.deb 2>/dev/null | head -1)
if [ -z "$run" ] || [ -z "$dev" ]; then
    echo "FAIL: cpack made no attn_${version}_*.deb and attn-dev_${version}_*.deb: $(ls "$D")"
    exit 1
fi
dpkg-deb -c "$run" | awk '{ print $6 }' >"$T/run.list"
dpkg-deb -c "$dev" | awk '{ print $6 }' >"$T/dev.list"
check "attn's files" has "$T/run.list" '^\./usr/bin/attn$' "^\./usr/lib/(.*/)?libattn\.so\.$soversion\$" \
    '^\./usr/share/attn/models/zh-en-small/model\.safetensors$' '^\./usr/share/man/man1/attn\.1\.gz$' \
    '^\./usr/share/man/man1/attn-translate\.1\.gz$' '^\./usr/share/bash-completion/completions/attn$'
check "attn-dev's files" has "$T/dev.list" '^\./usr/include/attn/attn\.h$' '^\./usr/lib/(.*/)?libattn\.a$' \
    '^\./usr/lib/(.*/)?libattn\.so$' '^\./usr/lib/(.*/)?pkgconfig/attn\.pc$' '^\./usr/lib/(.*/)?cmake/attn/attnConfig\.cmake$'
check "attn and attn-dev share no file" bash -c '[ -z "$(grep -v "/$" "$1" | grep -Fxf - "$2")" ]' _ "$T/run.list" "$T/dev.list"
dpkg-deb -f "$run" Depends >"$T/run.depends"
deps=('^libc6 \(>= [0-9.]+\)')
grep -q '^Requires.private:.*libpng' "$build/attn.pc" && deps+=('libpng16-16 \(>= ' 'libfreetype6 \(>= ' 'libfontconfig1 \(>= ')
check "attn's dependencies (dpkg-shlibdeps)" has "$T/run.depends" "${deps[@]}"
check "attn-dev depends on attn $version" bash -c 'dpkg-deb -f "$1" Depends | grep -q "^attn (= $2)"' _ "$dev" "$version"
check "attn's shlibs: libattn $soversion" bash -c 'dpkg-deb -I "$1" shlibs | grep -q "^libattn $2 attn"' _ "$run" "$soversion"
R=$T/root
check "dpkg -x attn" dpkg -x "$run" "$R"
check "dpkg -x attn-dev" dpkg -x "$dev" "$R"
so=$(find "$R/usr/lib" -name "libattn.so.$version")
check "SONAME libattn.so.$soversion" bash -c 'readelf -d "$1" | grep -q "SONAME.*\[libattn.so.$2\]"' _ "$so" "$soversion"
check "packaged attn --version" bash -c '[ "$("$1" --version | cut -d" " -f1-2)" = "attn $2" ]' _ "$R/usr/bin/attn" "$version"
man_pages "$R/usr/share/man/man1" "$R/usr/bin/attn"
pkg_build "$(dirname "$so")" "$T/deb"

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]

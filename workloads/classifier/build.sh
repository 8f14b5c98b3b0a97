#!/bin/sh
# Build classifier.wasm (wasm32-wasi) from classifier.c, reproducibly.
#
# Needs Debian's (12) clang lld wasi-libc libclang-rt-14-dev-wasm32:
#   apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32
# wasi-libc installs its sysroot under /usr (include/wasm32-wasi, lib/wasm32-wasi).
#
# Usage: workloads/classifier/build.sh [OUTPUT]   (default: ucp_dtn/workloads/classifier.wasm, where the package ships it)
# CC and WASI_SYSROOT override the compiler and the sysroot.
#
# --stack-first puts the stack below the data: a stack overflow then traps instead of silently
# overwriting globals. --strip-all drops names and debug sections (smaller, and no build paths).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/../../ucp_dtn/workloads/classifier.wasm"}
cc=${CC:-clang}
sysroot=${WASI_SYSROOT:-/usr}
cd "$here"
"$cc" --target=wasm32-wasi --sysroot="$sysroot" \
    -std=c11 -O2 -Wall -Wextra -Werror -ffp-contract=off \
    -Wl,--stack-first -Wl,-z,stack-size=1048576 -Wl,--strip-all \
    -o "$out" classifier.c -lm

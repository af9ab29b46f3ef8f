#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fails, naming each file and line, when a C source of the project differs from
# what the pinned clang-format makes of it with the repository's .clang-format.
# Fix with: clang-format-14 -i FILE...
set -eu
srcdir=$1
clang_format=$2
cd "$srcdir"
find src tests bench -name '*.[ch]' -print | LC_ALL=C sort |
	xargs "$clang_format" --style=file --dry-run --Werror

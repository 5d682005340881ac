#!/usr/bin/env bash
# scripts/check-format.sh: checks every C++ file of the repo against .clang-format.
#
#   scripts/check-format.sh          check only (clang-format --dry-run --Werror); exit 1
#                                    and name the files when any is not formatted
#   scripts/check-format.sh --fix    rewrite the files in place (clang-format -i)
#
# Files: *.cpp *.hpp *.h *.cc *.cxx known to git (tracked, or untracked and not ignored),
# or, outside a git work tree, found under the repo minus build*/ and .git.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

fix=0
case "${1:-}" in
  --fix) fix=1 ;;
  "") ;;
  *)
    echo "usage: $0 [--fix]" >&2
    exit 2
    ;;
esac

clang_format=''
for candidate in clang-format clang-format-14; do
  if command -v "$candidate" >/dev/null 2>&1; then
    clang_format=$candidate
    break
  fi
done
[[ -n $clang_format ]] || {
  echo "error: clang-format not found (apt-get install clang-format)" >&2
  exit 1
}
[[ -f .clang-format ]] || {
  echo "error: no .clang-format in $root" >&2
  exit 1
}

files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- \
    '*.cpp' '*.hpp' '*.h' '*.cc' '*.cxx' | sort -u)
else
  mapfile -t files < <(find . \( -path ./.git -o -path './build*' \) -prune -o -type f \
    \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.cc' -o -name '*.cxx' \) \
    -print | sed 's|^\./||' | sort)
fi
# Keep only files that exist (git ls-files --cached lists deleted-but-tracked files too).
existing=()
for f in "${files[@]}"; do [[ -f $f ]] && existing+=("$f"); done

if ((${#existing[@]} == 0)); then
  echo "no C++ files found"
  exit 0
fi

if ((fix)); then
  "$clang_format" -i --style=file "${existing[@]}"
  echo "formatted ${#existing[@]} C++ files with $($clang_format --version | head -n1)"
  exit 0
fi

bad=()
for f in "${existing[@]}"; do
  if ! "$clang_format" --dry-run --Werror --style=file "$f" >/dev/null 2>&1; then
    bad+=("$f")
  fi
done

echo "checked ${#existing[@]} C++ files with $($clang_format --version | head -n1)"
if ((${#bad[@]})); then
  echo "not clang-formatted (${#bad[@]}):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  # Show the first offending spots of the first file, so CI logs say what is wrong.
  "$clang_format" --dry-run --Werror --style=file "${bad[0]}" 2>&1 | head -n 20 >&2 || true
  echo "fix with: scripts/check-format.sh --fix   (or clang-format -i FILE)" >&2
  exit 1
fi
echo "all C++ files are clang-formatted"

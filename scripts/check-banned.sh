#!/usr/bin/env bash
# Flags calls pier does not use: unbounded string writes and parsers that
# cannot report errors. Exit 1 and list them when any is found.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|atoll|gets)[[:space:]]*\('
if hits=$(grep -rnE "$pattern" src tests/unit tests/fuzz 2>/dev/null | grep -vE '^\S+:[0-9]+:\s*(/\*|\*)'); then
  echo "banned calls (use snprintf, pier_buf, strtok_r, pier_parse_*):"
  echo "$hits"
  exit 1
fi
echo "check-banned: ok"

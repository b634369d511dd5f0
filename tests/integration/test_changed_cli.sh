#!/usr/bin/env bash
# `pier changed` end to end on a temp git repository: exit status 0 (skip),
# 1 (build), 2 (error or usage) as git diff --quiet, Netlify's ignore and
# Vercel's Ignored Build Step read it; --json parsed by python; positional
# paths, --paths with several values, --exclude, --repo, -q, and the
# unquoted-empty `--since $CACHED_COMMIT_REF` of a first Netlify build.
set -u
PIER=${PIER:?set PIER to the pier binary}
PY=/usr/bin/python3
GIT=/usr/bin/git

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=T GIT_AUTHOR_EMAIL=t@example.com
export GIT_COMMITTER_NAME=T GIT_COMMITTER_EMAIL=t@example.com
unset GIT_DIR GIT_WORK_TREE

fails=0
# expect STATUS DESCRIPTION -- COMMAND...: runs it in the repo, checks $?.
expect() {
    local want=$1 what=$2
    shift 3
    local out
    out=$( (cd "$repo" && "$@") 2>"$tmp/err")
    local got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL: $what: exit $got, want $want"
        echo "  stdout: $out"
        echo "  stderr: $(cat "$tmp/err")"
        fails=$((fails + 1))
    else
        echo "ok: $what (exit $got)"
    fi
    last_out=$out
}

repo=$tmp/site
mkdir -p "$repo"
cd "$repo"
$GIT -c init.defaultBranch=main init -q
mkdir -p frontend/src frontend/docs backend "with space"
echo '<h1>hi</h1>' >frontend/index.html
echo 'app' >frontend/src/app.js
echo '# docs' >frontend/docs/a.md
echo 'int main;' >backend/main.c
echo 'x' >"with space/file é.txt"
$GIT add -A && $GIT commit -qm initial
base=$($GIT rev-parse HEAD)
echo 'int main2;' >backend/main.c
$GIT commit -qam "backend 1"
echo 'more' >frontend/src/app.js
$GIT commit -qam "frontend"
echo 'int main3;' >backend/main.c
$GIT commit -qam "backend 2"
head=$($GIT rev-parse HEAD)
cd /

# skip / build
expect 0 "backend-only push skips frontend" -- "$PIER" changed --since HEAD~1 frontend/
case $last_out in skip:*"no changes under frontend/"*"none matched"*) ;; *)
    echo "FAIL: skip output: $last_out"; fails=$((fails + 1)) ;; esac
expect 1 "the middle commit builds (not HEAD~1)" -- "$PIER" changed --since "$base" frontend/
case $last_out in *"modified"*"frontend/src/app.js"*) ;; *)
    echo "FAIL: file not listed: $last_out"; fails=$((fails + 1)) ;; esac
expect 1 "--paths with several values" -- "$PIER" changed --since HEAD~1 --paths 'docs/**' 'backend/**' --json
expect 0 "--exclude drops the only change" -- "$PIER" changed --since HEAD~2 --to HEAD~1 --paths 'frontend/**' --exclude 'frontend/src/**'
expect 1 "no paths: everything" -- "$PIER" changed --since HEAD~1
expect 0 "-q prints nothing on skip" -- "$PIER" changed -q --since HEAD~1 frontend
[ -z "$last_out" ] || { echo "FAIL: -q printed: $last_out"; fails=$((fails + 1)); }
expect 1 "-q on build" -- "$PIER" changed --since "$base" -q frontend
expect 1 "--repo from elsewhere, subdirectory discovered upward" -- "$PIER" changed --repo "$repo/frontend/src" --since "$base" 'frontend/**'
expect 1 "first run: --since ''" -- "$PIER" changed --since '' frontend/
expect 1 "first Netlify build: --since \$EMPTY --to X" -- "$PIER" changed --since --to "$head" frontend/
expect 1 "unknown base sha builds" -- "$PIER" changed --since 1234567890abcdef1234567890abcdef12345678 frontend/
case $last_out in *"not found (history rewritten?)"*) ;; *)
    echo "FAIL: reason: $last_out"; fails=$((fails + 1)) ;; esac
expect 1 "zero sha builds" -- "$PIER" changed --since 0000000000000000000000000000000000000000 frontend/

# errors: 2
expect 2 "bad --to" -- "$PIER" changed --since HEAD~1 --to no-such-rev frontend/
grep -q "no-such-rev" "$tmp/err" || { echo "FAIL: stderr does not name the rev"; fails=$((fails + 1)); }
expect 2 "bad --since name" -- "$PIER" changed --since no-such-branch frontend/
expect 2 "not a repository" -- "$PIER" changed --repo "$tmp" --since HEAD~1
grep -q "no git repository" "$tmp/err" || { echo "FAIL: stderr: $(cat "$tmp/err")"; fails=$((fails + 1)); }
expect 2 "missing --since" -- "$PIER" changed frontend/
expect 2 "unknown option" -- "$PIER" changed --since HEAD --bogus
expect 2 "bad glob" -- "$PIER" changed --since HEAD~1 'frontend/[abc'
expect 2 "--paths without a value" -- "$PIER" changed --since HEAD~1 --paths --json
expect 0 "--help" -- "$PIER" changed --help
case $last_out in *"exit status"*"Netlify"*"CACHED_COMMIT_REF"*) ;; *)
    echo "FAIL: help text: $last_out"; fails=$((fails + 1)) ;; esac

# JSON, checked by python
expect 1 "--json build" -- "$PIER" changed --since "$base" --json frontend/
printf '%s' "$last_out" | $PY -c '
import json, sys
d = json.load(sys.stdin)
base = sys.argv[1]
assert d["decision"] == "build", d
assert d["why"] == "matched", d
assert d["since"] == base, d
assert len(d["to"]) == 40, d
assert d["commits"] == 3, d
assert d["files_changed"] == 2, d
assert d["files"] == [{"status": "modified", "path": "frontend/src/app.js"}], d
assert d["error"] is None, d
assert d["reason"].startswith("1 file under frontend/ changed since " + base[:7]), d
' "$base" || { echo "FAIL: json build: $last_out"; fails=$((fails + 1)); }

expect 0 "--json skip" -- "$PIER" changed --since HEAD~1 --json frontend/
printf '%s' "$last_out" | $PY -c '
import json, sys
d = json.load(sys.stdin)
assert d["decision"] == "skip" and d["why"] == "none_matched", d
assert d["files"] == [] and d["files_changed"] == 1 and d["commits"] == 1, d
' || { echo "FAIL: json skip: $last_out"; fails=$((fails + 1)); }

# rename out of frontend: both sides count
(cd "$repo" && $GIT mv frontend/index.html backend/index.html && $GIT commit -qm move)
expect 1 "rename out of frontend builds frontend" -- "$PIER" changed --since HEAD~1 --json 'frontend/**'
printf '%s' "$last_out" | $PY -c '
import json, sys
d = json.load(sys.stdin)
assert d["files"] == [{"status": "renamed", "path": "backend/index.html",
                       "old_path": "frontend/index.html"}], d
' || { echo "FAIL: json rename: $last_out"; fails=$((fails + 1)); }

# a path with a space and non-ASCII characters
(cd "$repo" && echo y >"with space/file é.txt" && $GIT commit -qam "odd name")
expect 1 "path with a space and unicode" -- "$PIER" changed --since HEAD~1 --json 'with space/*.txt'
printf '%s' "$last_out" | $PY -c '
import json, sys
d = json.load(sys.stdin)
assert d["files"] == [{"status": "modified", "path": "with space/file \u00e9.txt"}], d
' || { echo "FAIL: json odd name: $last_out"; fails=$((fails + 1)); }
expect 0 "path with a space, filtered out" -- "$PIER" changed --since HEAD~1 frontend

expect 2 "--json with an error still prints JSON" -- "$PIER" changed --since nope --json
printf '%s' "$last_out" | $PY -c '
import json, sys
d = json.load(sys.stdin)
assert d["decision"] == "build" and d["why"] == "error" and d["error"] == "not found", d
' || { echo "FAIL: json error: $last_out"; fails=$((fails + 1)); }

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all checks passed"

#!/usr/bin/env bash
# pier's main job for `make run`. Until `pier up` exists this shows the most
# useful command there is: where credentials would come from.
set -uo pipefail
cd "$(dirname "$0")/.."
./build/pier --version
./build/pier credentials || true

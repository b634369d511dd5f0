#!/usr/bin/env bash
# `make run`: pier's main job on the example monorepo. Creates the example
# repository under .pier-demo/repo on first use, then runs `pier up` on it in
# the foreground (Ctrl-C stops it). The first poll deploys both sites.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
pier=${PIER:-$root/build/pier}
demo=$root/.pier-demo
listen=${PIER_API_LISTEN:-127.0.0.1:9000}
edge=${PIER_EDGE_LISTEN:-127.0.0.1:8080}
if [ ! -d "$demo/repo/.git" ]; then
    mkdir -p "$demo"
    "$root/examples/monorepo/create.sh" "$demo/repo" 2s
fi
port=${listen##*:}
cat <<MSG

The example monorepo is in $demo/repo (branches develop -> dev, main -> prod).
Push a change to the dev site (polling picks it up within 2 seconds):

  cd $demo/repo && git checkout -q develop && \\
    sed -i 's/version [0-9]*/version '\$(date +%s)'/' frontend/src/index.html && \\
    git commit -qam 'frontend: new version'

Watch it go live:

  curl -s http://web-dev.localhost:${edge##*:}/ | grep version      # through the edge
  curl -s http://127.0.0.1:$port/dev/index.html | grep version  # the bucket (S3 API)
  $pier status --dir $demo/repo
  $pier logs RUN --dir $demo/repo

A change under backend/ only is recorded as Skipped (no build).

MSG
exec "$pier" up "$demo/repo" --api-listen "$listen" --edge-listen "$edge"

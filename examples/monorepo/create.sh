#!/usr/bin/env bash
# Creates the example monorepo as a real git repository in DEST:
#   frontend/  a static site built by a shell script (no network): index.html,
#              content-hashed JS/CSS in dist/assets, and a component catalogue
#              ("storybook") built separately and moved under dist/storybook
#   backend/   a few files no frontend build depends on
#   buildspec.yml  CodeBuild style (install, pre_build, build, post_build, artifacts, cache)
#   pier.yml       dev pipeline (develop, frontend/**, storybook, /storybook rewrite,
#                  host web-dev.localhost) and prod pipeline (main, host web.localhost)
# Branches: main and develop, both at the first commit.
# usage: create.sh DEST [POLL_INTERVAL]   (default poll 2s)
set -euo pipefail
dest=${1:?usage: create.sh DEST [POLL_INTERVAL]}
poll=${2:-2s}
mkdir -p "$dest"
cd "$dest"
[ -e .git ] && { echo "create.sh: $dest is already a repository" >&2; exit 1; }
git init -q -b main .
git config user.name "pier example"
git config user.email "example@pier.invalid"
git config commit.gpgsign false

mkdir -p frontend/src frontend/stories backend/app scripts
cat > frontend/src/index.html <<'HTML'
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>pier example</title>
<link rel="stylesheet" href="/assets/__CSS__"></head>
<body>
<h1>Hello from the pier example</h1>
<p id="version">version 1</p>
<p><a href="/storybook">component catalogue</a></p>
<script src="/assets/__JS__"></script>
</body>
</html>
HTML
cat > frontend/src/app.js <<'JS'
document.getElementById("version").dataset.loaded = "yes";
JS
cat > frontend/src/style.css <<'CSS'
body { font-family: sans-serif; margin: 2rem; }
CSS
cat > frontend/stories/button.html <<'HTML'
<button class="btn">Button</button>
HTML
cat > frontend/build.sh <<'SH'
#!/bin/sh
# Builds frontend/dist with no network: hashed assets, index.html pointing at them.
set -eu
cd "$(dirname "$0")"
rm -rf dist
mkdir -p dist/assets
h() { sha256sum "$1" | cut -c1-8; }
js="app.$(h src/app.js).js"
css="style.$(h src/style.css).css"
cp src/app.js "dist/assets/$js"
cp src/style.css "dist/assets/$css"
sed -e "s/__JS__/$js/" -e "s/__CSS__/$css/" src/index.html > dist/index.html
echo "built dist with $js and $css"
SH
cat > frontend/build-storybook.sh <<'SH'
#!/bin/sh
# The component catalogue: a second build into storybook-static/.
set -eu
cd "$(dirname "$0")"
rm -rf storybook-static
mkdir -p storybook-static
{
  echo '<!doctype html><html><head><meta charset="utf-8"><title>catalogue</title></head><body>'
  echo '<h1>Component catalogue</h1>'
  for f in stories/*.html; do echo "<section>"; cat "$f"; echo "</section>"; done
  echo '</body></html>'
} > storybook-static/index.html
echo "built the catalogue"
SH
chmod +x frontend/build.sh frontend/build-storybook.sh
cat > backend/app/main.py <<'PY'
def handler(event, context):
    return {"ok": True}
PY
echo "# backend" > backend/README.md

cat > buildspec.yml <<'YML'
version: 0.2
env:
  variables:
    STORYBOOK: "0"
phases:
  install:
    commands:
      - cd frontend
      - mkdir -p .cache && echo "tools $(date +%s)" >> .cache/tools.txt
  pre_build:
    commands:
      - echo "building $CODEBUILD_RESOLVED_SOURCE_VERSION (previous ${CODEBUILD_WEBHOOK_PREV_COMMIT:-none})"
      - test -f .cache/tools.txt && echo "cache entries $(wc -l < .cache/tools.txt)"
  build:
    commands:
      - ./build.sh
      - if [ "$STORYBOOK" = "1" ]; then ./build-storybook.sh && mv storybook-static dist/storybook; fi
  post_build:
    commands:
      - echo "built $(find dist -type f | wc -l) files"
artifacts:
  base-directory: frontend/dist
  files:
    - '**/*'
cache:
  paths:
    - 'frontend/.cache/**/*'
YML

cat > pier.yml <<YML
# pier.yml: pipelines as code (docs/pipelines.md)
pipelines:
  - name: dev
    source:
      repo: .
      branch: develop
      paths: ["frontend/**", buildspec.yml]
      trigger:
        poll: $poll
    build:
      env:
        STORYBOOK: "1"
    cdn:
      host: web-dev.localhost
    site:
      rewrites:
        - from: /storybook
          to: /storybook/index.html
  - name: prod
    source:
      repo: .
      branch: main
      paths: ["frontend/**", buildspec.yml]
      trigger:
        poll: $poll
    cdn:
      host: web.localhost
YML
printf '.pier/\n' > .gitignore
git add -A
git commit -qm "example monorepo: frontend, backend, buildspec, pier.yml"
git branch develop
git checkout -q develop
echo "created $dest (branches main and develop)"

#!/bin/sh
# Example deploy step for the `github-deploy` hook: receives the pushed commit, the pusher and
# the repository as arguments. Replace the echo lines with your real deployment (git pull,
# build, restart), keeping `set -eu` so a failing step fails the run.
set -eu
commit="$1" pusher="$2" repository="$3"
echo "deploying $repository at $commit (pushed by $pusher)"
echo "deploy finished"

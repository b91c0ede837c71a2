#!/bin/sh
# Example for the `gitlab-push` hook: the project and branch arrive as environment variables.
set -eu
echo "GitLab push to ${PROJECT:-?} on ${BRANCH:-?}"

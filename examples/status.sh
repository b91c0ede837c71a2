#!/bin/sh
# Example for the `status` hook, whose output is returned in the HTTP response.
set -eu
echo "host: $(hostname)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "requested by: ${1:-unknown}"

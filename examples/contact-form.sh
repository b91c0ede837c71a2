#!/bin/sh
# Example for the `contact-form` hook: an HTML form posted as
# application/x-www-form-urlencoded; the fields arrive as arguments.
set -eu
printf 'message from %s <%s>: %s\n' "$1" "$2" "$3"

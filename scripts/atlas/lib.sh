# shellcheck shell=bash
# Shared helpers of the scripts/atlas bash scripts (sourced, not run).
# Each script sets USAGE before sourcing this file.

# die MESSAGE: bad input or unusable environment: one line on stderr, exit 2.
die() {
  echo "error: $*" >&2
  exit 2
}

# usage_error MESSAGE: like die, with the script's usage on the same line.
usage_error() {
  echo "error: $1; $USAGE" >&2
  exit 2
}

# show_help ARGUMENT: for -h or --help, prints the usage on stdout and exits 0.
show_help() {
  case "${1:-}" in
    -h | --help) echo "$USAGE"; exit 0 ;;
  esac
}

# need_value OPTION VALUE-COUNT: an option that takes a value must have one.
need_value() {
  [ "$2" -ge 2 ] || usage_error "$1 needs a value"
}

# is_positive TEXT: true for a whole number of at least 1.
is_positive() {
  [[ "$1" =~ ^[1-9][0-9]*$ ]]
}

# is_count TEXT: true for a whole number without sign or leading zeros (0 included).
is_count() {
  [[ "$1" =~ ^(0|[1-9][0-9]*)$ ]]
}

# run COMMAND...: runs the command, or with DRY_RUN=1 prints it shell-quoted on stdout, one line.
run() {
  if [ "${DRY_RUN:-0}" = 1 ]; then
    local quoted
    printf -v quoted '%q ' "$@"
    echo "${quoted% }"
  else
    "$@"
  fi
}

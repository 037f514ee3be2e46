# Sourced by setup_browser.sh and setup_postgres.sh: apt_install WHO PACKAGE... installs Debian packages
# with apt-get (as root, or through sudo), or stops with one line saying what to install by hand.
apt_install() {
  local who="$1"
  shift
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "$who: $* missing and installing needs root: run 'apt-get install $*' as root" >&2
      exit 2
    fi
    sudo="sudo"
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$who: $* missing and there is no apt-get here: install them by hand" >&2
    exit 2
  fi
  echo "$who: installing $* from Debian" >&2
  local began=$SECONDS
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  echo "$who: $* installed in $((SECONDS - began)) s" >&2
}

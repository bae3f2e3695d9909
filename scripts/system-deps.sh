#!/usr/bin/env bash
# Installs the system packages the portal needs, with apt, when they are missing and we are root.
# Usage: system-deps.sh wkhtmltopdf|chromium|postgresql|redis|nginx ...
set -euo pipefail

missing=()
for dep in "$@"; do
  case "$dep" in
    wkhtmltopdf) command -v wkhtmltopdf >/dev/null || missing+=(wkhtmltopdf fonts-dejavu-core) ;;
    chromium) command -v chromium >/dev/null || missing+=(chromium fonts-dejavu-core) ;;
    postgresql) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql) ;;
    redis) command -v redis-server >/dev/null || missing+=(redis-server) ;;
    nginx) command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx) ;;  # sbin: not on a user's PATH
    *) echo "unknown dependency: $dep" >&2; exit 2 ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages: ${missing[*]}" >&2
  echo "Install them as root: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "Installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

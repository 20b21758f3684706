#!/bin/sh
# Install Debian's `prometheus` package (prometheus + promtool) for the
# metrics tests and for local use, without starting its system service:
# a policy-rc.d that refuses every service start is in place during the
# install (the standard way in containers). Exits 0 when both binaries are
# on PATH afterwards, 1 otherwise (no apt, not root, no network...).
set -u
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    echo "install.sh: need root and apt-get to install prometheus" >&2
    exit 1
fi
policy=/usr/sbin/policy-rc.d
created=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && created=1
fi
export DEBIAN_FRONTEND=noninteractive
if [ "${SKIP_APT_UPDATE:-}" != 1 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
fi
apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1
status=$?
[ -n "$created" ] && rm -f "$policy"
[ $status -eq 0 ] && command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1

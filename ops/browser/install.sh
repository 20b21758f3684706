#!/bin/sh
# Install Debian's `chromium` and `chromium-driver` for the transparency page's browser
# test (tests/gateway/test_transparency.py) and for looking at the page locally. Exits 0
# when /usr/bin/chromium and /usr/bin/chromedriver are there afterwards, 1 otherwise (no
# apt, not root, no network...). Nothing else is downloaded: the test points Selenium at
# these two binaries.
set -u
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    echo "install.sh: need root and apt-get to install chromium and chromium-driver" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if [ "${SKIP_APT_UPDATE:-}" != 1 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
fi
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null 2>&1
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]

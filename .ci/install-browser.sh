#!/usr/bin/env bash
# Installs Debian's headless Chromium + ChromeDriver for the dashboard browser test.
# Never fails the build: without root or apt the browser test skips with its reason printed.
set -u
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: chromium/chromedriver missing and cannot apt-get install them here; the browser test will skip"
  exit 0
fi
echo "installing chromium and chromium-driver (Debian packages) for the dashboard browser test ..."
export DEBIAN_FRONTEND=noninteractive
(apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver) >/tmp/lm-audit-apt.log 2>&1 \
  || echo "note: apt-get install chromium failed (see /tmp/lm-audit-apt.log); the browser test will skip"
exit 0

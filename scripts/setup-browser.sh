#!/usr/bin/env bash
# Install Debian's Chromium for Character Studio's browser tests (tests/web/test_browser.py
# drives /usr/bin/chromium through Playwright; `playwright install` is never run). Only
# scripts/test.sh calls this; the demo needs no browser. It never fails the caller: when
# Chromium cannot be installed it says why and what to run, and the browser tests skip.
# CHARSTUDIO_APT_LOCK_WAIT_S (default 120) bounds the wait for another apt/dpkg to finish.
set -uo pipefail

CHROMIUM=${CHARSTUDIO_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] && exit 0

how="the browser tests skip until you run: sudo apt-get update && sudo apt-get install -y chromium"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-browser: $CHROMIUM is missing; $how" >&2
  exit 0
fi

wait_s=${CHARSTUDIO_APT_LOCK_WAIT_S:-120}
echo "setup-browser: installing chromium (waiting up to ${wait_s}s for the dpkg lock)" >&2
# DPkg::Lock::Timeout makes apt wait for a lock another process holds instead of failing.
if apt-get -o "DPkg::Lock::Timeout=$wait_s" update -qq \
  && apt-get -o "DPkg::Lock::Timeout=$wait_s" install -y -qq chromium; then
  exit 0
fi
echo "setup-browser: could not install chromium (another apt/dpkg may hold the lock for" \
  "more than ${wait_s}s, or there is no network); $how" >&2
exit 0

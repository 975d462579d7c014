#!/usr/bin/env bash
# Make sure a headless Chromium is available for the browser test of the HTML report
# (tests/gate/test_reports.py::test_html_renders_in_headless_chromium).
#
#   - a chromium, chromium-browser or google-chrome on PATH: nothing to do;
#   - else, as root on Debian/Ubuntu (apt-get): install Debian's `chromium` quietly;
#   - else: say the browser test will be skipped and how to install Chromium, exit 0;
#     but in CI (CI=true) a missing browser is an error (the test must run there).
set -euo pipefail

have_browser() {
    local name
    for name in chromium chromium-browser google-chrome; do
        command -v "$name" >/dev/null 2>&1 && return 0
    done
    return 1
}

if have_browser; then
    exit 0
fi

ci=false
case "${CI:-}" in
    [Tt][Rr][Uu][Ee] | 1 | [Yy][Ee][Ss]) ci=true ;;
esac

debian_like=false
if [ -r /etc/os-release ] && grep -Eqi '^(ID|ID_LIKE)=.*(debian|ubuntu)' /etc/os-release; then
    debian_like=true
fi

if [ "$(id -u)" -eq 0 ] && [ "$debian_like" = true ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: no Chromium on PATH; installing Debian's chromium with apt-get (for the HTML report test)"
    log="$(mktemp -t ensure-chromium.XXXXXX.log)"
    if apt-get update -q >"$log" 2>&1 \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >>"$log" 2>&1 \
        && have_browser; then
        rm -f "$log"
        exit 0
    fi
    tail -n 20 "$log" >&2 || true
    echo "ensure_chromium: apt-get install chromium failed (full log: $log)" >&2
    if [ "$ci" = true ]; then
        echo "ensure_chromium: CI=true: the headless-Chromium test of the HTML report must run; stopping" >&2
        exit 1
    fi
    echo "ensure_chromium: the headless-Chromium test of the HTML report will be skipped"
    exit 0
fi

if [ "$ci" = true ]; then
    echo "ensure_chromium: CI=true but no Chromium (chromium, chromium-browser, google-chrome) on PATH and" \
        "it cannot be installed here (needs root on Debian/Ubuntu with apt-get); install it in the CI image," \
        "e.g. 'apt-get install -y chromium', so the HTML report test can run" >&2
    exit 1
fi
echo "ensure_chromium: no Chromium on PATH: the headless-Chromium test of the HTML report will be skipped" \
    "(install it with 'sudo apt-get install -y chromium', or put chromium/google-chrome on PATH)"
exit 0

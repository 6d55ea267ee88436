#!/usr/bin/env bash
# Installs the Debian packages the test suite and benchmarks need, only when missing.
# Idempotent; safe to run on every CI start. Needs root (or sudo) on Debian 12.
set -euo pipefail

packages=(
  mosquitto                       # real MQTT broker for integration tests
  mosquitto-clients               # mosquitto_sub/pub for manual checks
  openssl                         # test TLS certificates
  gstreamer1.0-tools              # gst-inspect for diagnostics
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good       # rtph264pay, qtdemux
  gstreamer1.0-plugins-bad        # h264parse
  gstreamer1.0-rtsp               # libgstrtspserver
  gir1.2-gst-rtsp-server-1.0      # GstRtspServer through python3-gi
  gir1.2-gstreamer-1.0
  python3-gi                      # /usr/bin/python3 bindings for the RTSP test server
  procps                          # ps/pgrep for the process-table checks
  systemd                         # systemd-analyze verify/security, systemd-sysusers (test/packaging)
  systemd-container               # systemd-nspawn: the unit booted under systemd (test/packaging/systemd-boot.test.ts)
)

bash "$(dirname "$0")/ensure-debian-packages.sh" install-test-deps "${packages[@]}"
# Debian starts the packaged broker on 1883; tests run their own on free ports.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled mosquitto >/dev/null 2>&1; then
  systemctl disable --now mosquitto >/dev/null 2>&1 || echo "install-test-deps: could not disable the packaged mosquitto (tests use their own ports)"
fi

#!/usr/bin/env bash
# Installs the Debian packages the differential (real OVS) and live-network tests use.
# Only when root and only what is missing; a failure here never fails the build:
# the tests that need a package skip with the reason instead.
set -u
[ "$(id -u)" = 0 ] || exit 0
command -v apt-get >/dev/null 2>&1 || exit 0
need=()
command -v ovs-vswitchd >/dev/null 2>&1 || need+=(openvswitch-switch openvswitch-common)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing system packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
(apt-get update -qq && apt-get install -y -qq "${need[@]}") >/tmp/ctswitch-apt.log 2>&1 \
  || echo "warning: could not install ${need[*]} (see /tmp/ctswitch-apt.log); dependent tests will skip" >&2
exit 0

#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the whole suite (unit, integration
# against SoftHSM, the mock Powerhub and nginx on loopback, the fuzz corpora), then runs it
# again built with AddressSanitizer + UndefinedBehaviorSanitizer, and the concurrency tests
# (label concurrency: the threaded client and the agent under load) once more built with
# ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
JOBS=$(nproc)

echo "== build (RelWithDebInfo, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPHC_WERROR=ON -DPHC_TEST_HOOKS=ON >/dev/null
cmake --build build -j"$JOBS"
echo "== tests"
(cd build && ctest --output-on-failure -j"$JOBS")

echo "== build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPHC_SANITIZE=ON -DPHC_WERROR=ON -DPHC_TEST_HOOKS=ON >/dev/null
cmake --build build-asan -j"$JOBS"
echo "== tests under ASan + UBSan"
(cd build-asan && ctest --output-on-failure -j"$JOBS")

# ThreadSanitizer excludes ASan, so it gets a build of its own: only what the concurrency
# tests run (phc, the agent, the mock, the drivers, the slow-token shim), and only those tests.
echo "== build (ThreadSanitizer: the concurrency tests)"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DPHC_TSAN=ON -DPHC_WERROR=ON -DPHC_TEST_HOOKS=ON >/dev/null
cmake --build build-tsan -j"$JOBS" --target phc phc-agent mock_powerhub concurrency agent_load slow_pkcs11
echo "== concurrency tests under TSan"
(cd build-tsan && ctest --output-on-failure -L concurrency)

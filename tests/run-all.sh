#!/usr/bin/env bash
# Runs every test project of AgentGateway on a fresh Debian machine with the .NET 10 SDK.
# Sets up what it needs: redis-server and postgresql (the functional tests start their own on free
# ports), the MCP conformance suite with its Node.js (npm, into tests/conformance) and the NuGet packages. Ends with one line summing all projects: "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
  echo "Installing redis-server…"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq redis-server >/dev/null
fi

# The official MCP conformance suite and the Node.js 22 it runs on (npm's `node` package), for
# Conformance/McpConformanceTests: exact versions from tests/conformance/package-lock.json, installed
# into tests/conformance/node_modules (git-ignored), again only when the lock file changes.
conformance=tests/conformance
stamp="$conformance/node_modules/.installed-lock"
if [ ! -x "$conformance/node_modules/node/bin/node" ] || ! cmp -s "$conformance/package-lock.json" "$stamp"; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "Installing npm…"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq npm >/dev/null
  fi
  echo "Installing the MCP conformance suite…"
  (cd "$conformance" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$conformance/package-lock.json" "$stamp"
fi

# The database hop's tests run a real PostgreSQL (initdb and pg_ctl as the postgres user) and psql.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v psql >/dev/null 2>&1; then
  echo "Installing postgresql and postgresql-client…"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql postgresql-client >/dev/null
fi

dotnet restore AgentGateway.sln --verbosity quiet
dotnet build AgentGateway.sln --no-restore --verbosity quiet --nologo

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
status=0
dotnet test AgentGateway.sln --no-build --nologo --logger "trx" --logger "console;verbosity=normal" \
  --results-directory "$results" 2>&1 | tee "$results/console.log" || status=$?

# A failure scrolls far above the end of a long log, and CI may keep only the log's tail: name
# each one again, with the start of its message and stack, just above the summary line.
if grep -qE '^  Failed ' "$results/console.log"; then
  echo
  echo "Failed tests (repeated from above):"
  awk '/^  Failed /{show=1; lines=0} /^  (Passed|Skipped) |^\[xUnit\.net/{show=0} show && lines++ < 25 && total++ < 60' \
    "$results/console.log"
fi

# Sum the counters of every project's TRX report.
passed=0; failed=0; skipped=0; reports=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  reports=$((reports + 1))
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  value() { echo "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
  passed=$((passed + $(value passed)))
  failed=$((failed + $(value failed) + $(value error) + $(value timeout) + $(value aborted)))
  skipped=$((skipped + $(value notExecuted)))
done

if [ "$reports" -eq 0 ]; then
  echo "No test report was produced."
  failed=$((failed + 1))
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # dotnet test failed without a failing test (a crashed host, say): never report green.
  failed=1
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]

#!/usr/bin/env bash
# Starts the gateway on the example configuration (in process, no Redis), shows it refusing an
# agent that brings someone else's credentials instead of its own identity, shows readiness and
# config validation, then stops it. Needs only the .NET 10 SDK and curl.
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
echo "demo-crm-client-secret" > "$work/crm-client-secret"
# The example's MCP hop authenticates with a private key (private_key_jwt): make a throwaway one.
if ! command -v openssl >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq openssl >/dev/null
fi
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/tools-client-key.pem" 2>/dev/null
sed -e "s#/run/secrets/crm-client-secret#$work/crm-client-secret#" \
    -e "s#/run/secrets/tools-client-key.pem#$work/tools-client-key.pem#" \
    config/gateway.example.json > "$work/gateway.json"
export OPENAI_API_KEY="sk-demo-placeholder-key"

echo "== Building"
dotnet build src/AgentGateway.Host --verbosity quiet --nologo >/dev/null

echo "== agentgateway validate"
dotnet run --project src/AgentGateway.Host --no-build -- validate "$work/gateway.json"

echo "== agentgateway run (http://127.0.0.1:5080)"
dotnet run --project src/AgentGateway.Host --no-build -- run --config "$work/gateway.json" --urls http://127.0.0.1:5080 >"$work/gateway.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do
  curl -fs http://127.0.0.1:5080/healthz >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/gateway.log"; exit 1; }
  sleep 0.5
done

echo
echo "== An agent with a cookie and an API key, but no identity of its own:"
echo "   curl -H 'Cookie: session=…' -H 'x-api-key: …' http://127.0.0.1:5080/llm/openai/v1/models"
curl -s -i http://127.0.0.1:5080/llm/openai/v1/models -H "Cookie: session=agent-session" -H "x-api-key: agent-key"
echo
echo
echo "== A path no route serves:"
curl -s http://127.0.0.1:5080/nowhere
echo
echo
echo "== Readiness:"
curl -s http://127.0.0.1:5080/readyz
echo

#!/usr/bin/env bash
# Creates the Secret "agentgateway-secrets" the Deployment reads, without any value passing
# through a file in this repository. Keys the gateway owns are generated here; keys that belong
# to others come from the environment (fill them from your secret store: External Secrets,
# Sealed Secrets, Vault, ...). Prefer that store's own operator in production; this is the
# minimum for a first install.
#
#   OPENAI_API_KEY=... REDIS_CONNECTION=... CRM_CLIENT_SECRET_FILE=... bash deploy/kubernetes/create-secret.sh
#
# REDIS_CONNECTION is a StackExchange.Redis connection string, e.g. "redis-master.redis.svc:6379",
# Sentinel "sentinel-0:26379,serviceName=mymaster", TLS "...,ssl=true,password=...".
set -euo pipefail
: "${OPENAI_API_KEY:?the LLM hop's key}"
: "${REDIS_CONNECTION:?StackExchange.Redis connection string}"
: "${CRM_CLIENT_SECRET_FILE:?a file holding the CRM hop's client secret}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# EC P-256 key shared by all replicas: it signs the provenance assertions.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/provenance-key.pem" 2>/dev/null

kubectl create secret generic agentgateway-secrets --namespace agentgateway \
  --from-literal=AGW_CACHE_KEY="$(openssl rand -base64 32)" \
  --from-literal=AGW_AUDIT_KEY="$(openssl rand -base64 32)" \
  --from-literal=OPENAI_API_KEY="$OPENAI_API_KEY" \
  --from-literal=REDIS_CONNECTION="$REDIS_CONNECTION" \
  --from-file=crm-client-secret="$CRM_CLIENT_SECRET_FILE" \
  --from-file=provenance-key.pem="$work/provenance-key.pem"

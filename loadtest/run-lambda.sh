#!/usr/bin/env bash
# npm run load:lambda: loadtest/lambda.yml against a deployed stack, from AWS Lambda workers.
#   TALLY_URL      the HttpApiUrl output of `cdk deploy` (required)
#   TALLY_API_KEY  one of the stack's API keys (required)
#   LOAD_COUNT     Lambda workers (default 16: ≈ 1M calls/minute at the last phase, see lambda.yml)
#   AWS_REGION     where the workers run (default us-east-1): the stack's Region
# AWS credentials come from the usual chain (AWS_PROFILE, environment, SSO).
set -euo pipefail
cd "$(dirname "$0")"
: "${TALLY_URL:?set TALLY_URL to the stack's HttpApiUrl}"
: "${TALLY_API_KEY:?set TALLY_API_KEY to one of the stack's API keys}"
node -e 'if (+process.versions.node.split(".")[0] < 22 || (+process.versions.node.split(".")[0] === 22 && +process.versions.node.split(".")[1] < 13)) { console.error("Artillery 2.0.34 needs Node >= 22.13 (npm scripts use node_modules/.bin/node)"); process.exit(1); }'
vars=$(node -e 'console.log(JSON.stringify({ apiKey: process.env.TALLY_API_KEY }))')
exec npx -y artillery@2.0.34 run-lambda \
  --count "${LOAD_COUNT:-16}" \
  --region "${AWS_REGION:-us-east-1}" \
  --architecture arm64 \
  --target "$TALLY_URL" \
  --variables "$vars" \
  "$@" lambda.yml

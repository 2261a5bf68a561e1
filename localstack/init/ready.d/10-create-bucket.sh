#!/bin/bash
# LocalStack init hook (runs inside the container once S3 is ready): creates the bucket
# jetvault stores into, named by JETVAULT_BUCKET (default "jetvault"). Idempotent.
set -euo pipefail
bucket="${JETVAULT_BUCKET:-jetvault}"
if awslocal s3api head-bucket --bucket "$bucket" >/dev/null 2>&1; then
  echo "jetvault: bucket $bucket exists"
else
  awslocal s3api create-bucket --bucket "$bucket" >/dev/null
  echo "jetvault: bucket $bucket created"
fi

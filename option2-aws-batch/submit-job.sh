#!/usr/bin/env bash
# submit-job.sh: build and push the images, apply the Terraform stack, submit the job (or an
# array job over a manifest) to AWS Batch. Run `submit-job.sh --help` for the options.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG=submit-job
# shellcheck source=SCRIPTDIR/../scripts/deploy-common.sh
source "$HERE/../scripts/deploy-common.sh"
# The job's image, and the array job's (the manifest entrypoint on the same layers).
BUILD_TARGETS=(":" "batch-array:-array")

usage() {
    cat <<EOF
Usage: option2-aws-batch/submit-job.sh [OPTIONS]

Build the image (and its batch-array target) and push both to the stack's ECR repository as
TAG and TAG-array, apply the Terraform stack in option2-aws-batch/terraform with that tag, then
aws batch submit-job: one job, or with --manifest an array job whose child N copies line N of
the manifest. Batch retries an attempt that ended in a Spot reclaim, exit 143 or exit 4, and
not one that ended in exit 2 or 3.

Options:
  --image-tag TAG     tag to build and push (default: the git commit, plus -dirty and a
                      timestamp if the work tree has changes; ECR tags are immutable)
  --build-arg NAME=VALUE passed to docker build (app/Dockerfile's BUILD_IMAGE, RUNTIME_IMAGE)
  --skip-build        do not build or push: TAG and TAG-array are in ECR already
  --skip-apply        do not run terraform apply: the stack exists. If --image-tag is given,
                      register job definition revisions for that image instead
  --outputs FILE      the stack's outputs as \`terraform output -json\` writes them (default: ask
                      terraform in $TF_DIR)
  --job-id ID         submit another job than the stack's default (with --source and --topic)
  --source URI        s3://BUCKET/KEY of that job (the job role must be allowed to read it)
  --topic TOPIC       topic of that job (the job role must be allowed to write it)
  --manifest URI      s3://BUCKET/KEY of a CSV manifest with the header source,job_id,topic:
                      submit an array job, one child per line
  --array-size N      children of the array job (default: the manifest's line count, 2..10000)
  --auto-approve      pass -auto-approve to terraform apply
  -h, --help          show this help

Environment:
  TERRAFORM   terraform or tofu binary (default terraform)
  AWS         aws CLI binary (default aws); AWS_REGION, AWS_PROFILE and AWS_ENDPOINT_URL are
              honoured as usual

The tests run it with --skip-build --skip-apply --outputs FILE against moto.
EOF
}

manifest=""
array_size=""

while (($#)); do
    case "$1" in
    --manifest) manifest="${2:?--manifest needs a value}"; shift 2 ;;
    --array-size) array_size="${2:?--array-size needs a value}"; shift 2 ;;
    *) common_option "$@"; shift "$TAKEN" ;;
    esac
done

require_tools
if [[ -n "$manifest" && -n "$job_id$source_uri$topic" ]]; then
    die "--manifest names the jobs itself: drop --job-id, --source and --topic"
fi
[[ -z "$manifest" || "$manifest" == s3://*/* ]] || die "--manifest must be s3://BUCKET/KEY"

# A new revision of a job definition whose only change is the image.
register_revision() {
    local definition="$1" image="$2" current
    current="$("$AWS" batch describe-job-definitions --job-definitions "$definition" \
        --query 'jobDefinitions[0]' --output json)"
    [[ "$current" != null ]] || die "no job definition $definition"
    jq --arg image "$image" '
        .containerProperties.image = $image
        | {jobDefinitionName, type, parameters, retryStrategy, timeout, propagateTags,
           platformCapabilities, containerProperties, tags}
        | with_entries(select(.value != null))' <<<"$current" >"$work/job-definition.json"
    "$AWS" batch register-job-definition --cli-input-json "file://$work/job-definition.json" \
        --query '[jobDefinitionName, revision]' --output text | tr '\t' ':'
}

# Batch job names: up to 128 letters, digits, hyphens and underscores.
job_name() { printf '%s' "$1" | tr --complement 'A-Za-z0-9_-' '-' | cut --characters=1-128; }

make_work_dir
deploy_stack

queue="$(output job_queue)"
if [[ -n "$manifest" ]]; then
    definition="$(output array_job_definition)"
    image_suffix="-array"
else
    definition="$(output job_definition)"
    image_suffix=""
fi
if ((skip_apply && image_changed)); then
    definition="$(register_revision "${definition%%:*}" "$(output ecr_repository_url):$image_tag$image_suffix")"
    log "registered $definition for image tag $image_tag$image_suffix"
fi

if [[ -n "$manifest" ]]; then
    if [[ -z "$array_size" ]]; then
        # Lines after the header that hold something: one child each.
        array_size="$("$AWS" s3 cp "$manifest" - | tail --lines=+2 | grep --count '[^[:space:]]' || true)"
    fi
    if ! [[ "$array_size" =~ ^[0-9]+$ ]] || ((array_size < 2 || array_size > 10000)); then
        die "an array job takes 2 to 10000 children, the manifest gives $array_size (one file: use --job-id, --source, --topic)"
    fi
    name="$(job_name "manifest-${manifest##*/}")"
    overrides="$(jq --null-input --arg manifest "$manifest" '{environment: [{name: "CSV_TO_KAFKA_MANIFEST", value: $manifest}]}')"
    log "submitting array job $name: $array_size children from $manifest"
    batch_job="$("$AWS" batch submit-job --job-name "$name" --job-queue "$queue" \
        --job-definition "$definition" --array-properties "size=$array_size" \
        --container-overrides "$overrides" --query jobId --output text)"
    effective_job="(one per manifest line)"
else
    effective_job="${job_id:-$(output job_id)}"
    overrides="$(jq --null-input --arg job "$job_id" --arg source "$source_uri" --arg topic "$topic" '
        [ {name: "CSV_TO_KAFKA_JOB_ID", value: $job}, {name: "CSV_TO_KAFKA_SOURCE", value: $source},
          {name: "CSV_TO_KAFKA_TOPIC", value: $topic} ] | map(select(.value != "")) | {environment: .}')"
    name="$(job_name "$effective_job")"
    log "submitting job $name to $queue ($definition)"
    batch_job="$("$AWS" batch submit-job --job-name "$name" --job-queue "$queue" \
        --job-definition "$definition" --container-overrides "$overrides" \
        --query jobId --output text)"
fi
[[ -n "$batch_job" && "$batch_job" != None ]] || die "submit-job returned no job id"
printf '%s\n' "$batch_job"

cat >&2 <<EOF
submit-job: submitted $batch_job for job id $effective_job. To follow it:
  aws batch describe-jobs --jobs $batch_job --query 'jobs[0].[status,statusReason,attempts[].container.exitCode]'
  aws logs tail $(output log_group_name) --log-stream-name-prefix batch/ --follow
  aws dynamodb get-item --table-name $(output table_name) --key '{"job_id":{"S":"JOB_ID"}}'
  dashboard: $(output dashboard_url)
EOF

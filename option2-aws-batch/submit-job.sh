#!/usr/bin/env bash
# submit-job.sh: build and push the images, apply the Terraform stack, submit the job (or an
# array job over a manifest) to AWS Batch. Run `submit-job.sh --help` for the options.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
TF_DIR="$HERE/terraform"
TERRAFORM="${TERRAFORM:-terraform}"
AWS="${AWS:-aws}"

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

log() { printf 'submit-job: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 2
}

image_tag=""
skip_build=0
skip_apply=0
outputs_file=""
job_id=""
source_uri=""
topic=""
manifest=""
array_size=""
auto_approve=()

while (($#)); do
    case "$1" in
    --image-tag) image_tag="${2:?--image-tag needs a value}"; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --skip-apply) skip_apply=1; shift ;;
    --outputs) outputs_file="${2:?--outputs needs a file}"; shift 2 ;;
    --job-id) job_id="${2:?--job-id needs a value}"; shift 2 ;;
    --source) source_uri="${2:?--source needs a value}"; shift 2 ;;
    --topic) topic="${2:?--topic needs a value}"; shift 2 ;;
    --manifest) manifest="${2:?--manifest needs a value}"; shift 2 ;;
    --array-size) array_size="${2:?--array-size needs a value}"; shift 2 ;;
    --auto-approve) auto_approve=(-auto-approve); shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
    esac
done

command -v jq >/dev/null || die "jq is required"
if [[ -n "$manifest" && -n "$job_id$source_uri$topic" ]]; then
    die "--manifest names the jobs itself: drop --job-id, --source and --topic"
fi
[[ -z "$manifest" || "$manifest" == s3://*/* ]] || die "--manifest must be s3://BUCKET/KEY"

default_tag() {
    local tag
    tag="$(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null || echo build)"
    if [[ -n "$(git -C "$REPO" status --porcelain 2>/dev/null)" ]]; then
        tag="$tag-dirty-$(date --utc +%Y%m%d%H%M%S)"
    fi
    printf '%s\n' "$tag"
}

stack_outputs() {
    if [[ -n "$outputs_file" ]]; then
        cat "$outputs_file"
    else
        "$TERRAFORM" -chdir="$TF_DIR" output -json
    fi
}

output() { jq --raw-output --arg name "$1" '.[$name].value // empty' <<<"$outputs"; }

# The default target is the job's image; batch-array adds the manifest entrypoint on top of the
# same layers (Batch cannot override an image's entrypoint).
build_and_push() {
    local repository="$1" tag="$2" region="$3"
    command -v docker >/dev/null || die "docker is required to build (or use --skip-build)"
    log "building $repository:$tag and $repository:$tag-array"
    docker build --file "$REPO/app/Dockerfile" --tag "$repository:$tag" "$REPO"
    docker build --file "$REPO/app/Dockerfile" --target batch-array --tag "$repository:$tag-array" "$REPO"
    "$AWS" ecr get-login-password --region "$region" |
        docker login --username AWS --password-stdin "${repository%%/*}" >/dev/null
    docker push "$repository:$tag"
    docker push "$repository:$tag-array"
}

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

work="$(mktemp --directory)"
trap 'rm --recursive --force "$work"' EXIT

image_changed=0
if [[ -n "$image_tag" ]]; then
    image_changed=1
elif ((!skip_build)); then
    image_tag="$(default_tag)"
    image_changed=1
fi

outputs="$(stack_outputs 2>/dev/null || echo '{}')"
if ((!skip_build)); then
    repository="$(output ecr_repository_url)"
    if [[ -z "$repository" ]]; then
        ((!skip_apply)) || die "no ecr_repository_url in the stack's outputs"
        log "creating the stack's repository first"
        "$TERRAFORM" -chdir="$TF_DIR" apply "${auto_approve[@]}" -target=module.core.aws_ecr_repository.this
        outputs="$(stack_outputs)"
        repository="$(output ecr_repository_url)"
    fi
    build_and_push "$repository" "$image_tag" "$(output aws_region)"
fi

if ((!skip_apply)); then
    log "applying $TF_DIR with image_tag=$image_tag"
    tag_var=()
    [[ -n "$image_tag" ]] && tag_var=(-var "image_tag=$image_tag")
    "$TERRAFORM" -chdir="$TF_DIR" apply "${auto_approve[@]}" "${tag_var[@]}"
fi
outputs="$(stack_outputs)"
[[ "$outputs" != "{}" ]] || die "the stack has no outputs: apply it first (or pass --outputs)"

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

#!/usr/bin/env bash
# launch-spot.sh: build and push the image, apply the Terraform stack, start a one-off Spot
# instance that runs the job and terminates itself. Run `launch-spot.sh --help` for the options.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG=launch-spot
# shellcheck source=SCRIPTDIR/../scripts/deploy-common.sh
source "$HERE/../scripts/deploy-common.sh"
USER_DATA="$HERE/user-data.sh"

usage() {
    cat <<EOF
Usage: option3-ec2-spot/launch-spot.sh [OPTIONS]

Build the image and push it to the stack's ECR repository, apply the Terraform stack in
option3-ec2-spot/terraform, then start one Spot instance from its launch template
(aws ec2 run-instances with a one-time Spot market option). The instance's user data is the
job's settings followed by user-data.sh: it runs the job, turns a Spot interruption notice into
SIGTERM, and powers the instance off (which terminates it) when the job ends.

Options:
  --image-tag TAG      tag to build and push (default: the git commit, plus -dirty and a
                       timestamp if the work tree has changes; ECR tags are immutable)
  --build-arg NAME=VALUE passed to docker build (app/Dockerfile's BUILD_IMAGE, RUNTIME_IMAGE)
  --skip-build         do not build or push: the image TAG (or the stack's image) is in ECR
  --skip-apply         do not run terraform apply: the stack exists
  --outputs FILE       the stack's outputs as \`terraform output -json\` writes them (default: ask
                       terraform in $TF_DIR)
  --job-id ID          run another job than the stack's default (with --source and --topic)
  --source URI         s3://BUCKET/KEY of that job (the instance role must be allowed to read it)
  --topic TOPIC        topic of that job (the instance role must be allowed to write it)
  --subnet-id ID       subnet to launch in (default: the stack's first)
  --max-price USD      highest hourly Spot price (default: the on-demand price)
  --print-user-data    print the user data and exit without launching
  --auto-approve       pass -auto-approve to terraform apply
  -h, --help           show this help

Environment:
  TERRAFORM   terraform or tofu binary (default terraform)
  AWS         aws CLI binary (default aws); AWS_REGION, AWS_PROFILE and AWS_ENDPOINT_URL are
              honoured as usual

The tests run it with --skip-build --skip-apply --outputs FILE against moto.
EOF
}

subnet_id=""
max_price=""
print_only=0

while (($#)); do
    case "$1" in
    --subnet-id) subnet_id="${2:?--subnet-id needs a value}"; shift 2 ;;
    --max-price) max_price="${2:?--max-price needs a value}"; shift 2 ;;
    --print-user-data) print_only=1; shift ;;
    *) common_option "$@"; shift "$TAKEN" ;;
    esac
done

require_tools

# The user data: a shebang, one single-quoted export per setting, then user-data.sh (the same
# layout as the launch template's, in terraform/main.tf).
render_user_data() {
    local image="$1"
    jq --raw-output --arg image "$image" --arg job "$job_id" --arg source "$source_uri" --arg topic "$topic" '
        def quoted: "\u0027" + (tostring | gsub("\u0027"; "\u0027\\\u0027\u0027")) + "\u0027";
        ( {SPOT_JOB_IMAGE: $image,
           SPOT_JOB_LOG_GROUP: .log_group_name.value,
           SPOT_JOB_ATTEMPTS: (.retry_attempts.value | tostring)}
          + (if .sasl_secret_arn.value then {SPOT_JOB_SASL_SECRET_ARN: .sasl_secret_arn.value} else {} end)
          + .environment.value
          + (if $job != "" then {CSV_TO_KAFKA_JOB_ID: $job} else {} end)
          + (if $source != "" then {CSV_TO_KAFKA_SOURCE: $source} else {} end)
          + (if $topic != "" then {CSV_TO_KAFKA_TOPIC: $topic} else {} end)
        ) as $settings
        | "#!/bin/bash",
          "# Settings written by launch-spot.sh (option3-ec2-spot); user-data.sh follows.",
          ($settings | to_entries | sort_by(.key) | .[] | "export \(.key)=\(.value | quoted)")
    ' <<<"$outputs"
    cat "$USER_DATA"
}

deploy_stack

image="$(output image)"
[[ -z "$image_tag" ]] || image="$(output ecr_repository_url):$image_tag"

make_work_dir
render_user_data "$image" >"$work/user-data"
if ((print_only)); then
    cat "$work/user-data"
    exit 0
fi
# EC2 takes at most 16 KB of user data (before base64).
(($(wc --bytes <"$work/user-data") <= 16384)) || die "the user data exceeds 16 KB"

subnet_id="${subnet_id:-$(jq --raw-output '.subnet_ids.value[0]' <<<"$outputs")}"
effective_job="${job_id:-$(output job_id)}"
spot_options="SpotInstanceType=one-time,InstanceInterruptionBehavior=terminate"
[[ -z "$max_price" ]] || spot_options="$spot_options,MaxPrice=$max_price"

log "launching a Spot instance for job $effective_job in $subnet_id"
instance_id="$("$AWS" ec2 run-instances \
    --launch-template "LaunchTemplateId=$(output launch_template_id),Version=$(output launch_template_version)" \
    --instance-market-options "MarketType=spot,SpotOptions={$spot_options}" \
    --instance-initiated-shutdown-behavior terminate \
    --metadata-options HttpTokens=required,HttpEndpoint=enabled,HttpPutResponseHopLimit=1 \
    --subnet-id "$subnet_id" \
    --user-data "file://$work/user-data" \
    --tag-specifications "ResourceType=instance,Tags=[{Key=Name,Value=csv-to-kafka-$effective_job},{Key=JobId,Value=$effective_job}]" \
    --count 1 \
    --query 'Instances[0].InstanceId' --output text)"
[[ -n "$instance_id" && "$instance_id" != None ]] || die "run-instances started no instance"
printf '%s\n' "$instance_id"

cat >&2 <<EOF
launch-spot: started $instance_id; it terminates itself when the job ends. To follow it:
  aws ec2 describe-instances --instance-ids $instance_id --query 'Reservations[0].Instances[0].State.Name'
  aws logs tail $(output log_group_name) --log-stream-name-prefix $effective_job/ --follow
  aws dynamodb get-item --table-name $(output table_name) --key '{"job_id":{"S":"$effective_job"}}'
  aws ec2 get-console-output --instance-id $instance_id --latest --output text   # user-data.sh's own lines
  dashboard: $(output dashboard_url)
EOF

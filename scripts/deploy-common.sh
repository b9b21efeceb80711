# shellcheck shell=bash disable=SC2034  # its variables are read by the scripts that source it
# deploy-common.sh: what the three stacks' scripts share, sourced by option1-ecs-fargate/deploy.sh,
# option2-aws-batch/submit-job.sh and option3-ec2-spot/launch-spot.sh (not run on its own).
#
# The sourcing script sets PROG (its name in messages) and HERE (its folder), defines usage(),
# hands every option it does not take itself to common_option, then calls deploy_stack: build
# and push the image, apply the stack, read the stack's outputs.

REPO="$(dirname "$HERE")"
TF_DIR="$HERE/terraform"
TERRAFORM="${TERRAFORM:-terraform}"
AWS="${AWS:-aws}"
# The images to build and push, as TARGET:SUFFIX (an empty target: the Dockerfile's last stage);
# each is pushed as <tag><suffix>.
BUILD_TARGETS=(":")

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
    log "error: $*"
    exit 2
}

# The options every script takes.
image_tag=""
skip_build=0
skip_apply=0
outputs_file=""
job_id=""
source_uri=""
topic=""
auto_approve=()
build_args=()

# Takes one of those options from the head of "$@"; sets TAKEN to the number of words it used.
common_option() {
    TAKEN=2
    case "$1" in
    --image-tag) image_tag="${2:?--image-tag needs a value}" ;;
    --skip-build) skip_build=1 TAKEN=1 ;;
    --skip-apply) skip_apply=1 TAKEN=1 ;;
    --outputs) outputs_file="${2:?--outputs needs a file}" ;;
    --job-id) job_id="${2:?--job-id needs a value}" ;;
    --source) source_uri="${2:?--source needs a value}" ;;
    --topic) topic="${2:?--topic needs a value}" ;;
    --auto-approve) auto_approve=(-auto-approve) TAKEN=1 ;;
    --build-arg) build_args+=(--build-arg "${2:?--build-arg needs NAME=VALUE}") ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        die "unknown option $1"
        ;;
    esac
}

require_tools() {
    command -v jq >/dev/null || die "jq is required"
    command -v "$AWS" >/dev/null || die "the AWS CLI ($AWS) is required"
}

# A scratch folder, $work, removed when the script exits.
make_work_dir() {
    work="$(mktemp --directory)"
    trap 'rm --recursive --force "$work"' EXIT
}

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

# Reads one output's value from the outputs JSON.
output() { jq --raw-output --arg name "$1" '.[$name].value // empty' <<<"$outputs"; }

build_and_push() {
    local repository="$1" tag="$2" region="$3" spec target
    command -v docker >/dev/null || die "docker is required to build (or use --skip-build)"
    for spec in "${BUILD_TARGETS[@]}"; do
        target="${spec%%:*}"
        log "building $repository:$tag${spec#*:}"
        docker build --file "$REPO/app/Dockerfile" ${target:+--target "$target"} \
            "${build_args[@]}" --tag "$repository:$tag${spec#*:}" "$REPO"
    done
    "$AWS" ecr get-login-password --region "$region" |
        docker login --username AWS --password-stdin "${repository%%/*}" >/dev/null
    for spec in "${BUILD_TARGETS[@]}"; do
        log "pushing $repository:$tag${spec#*:}"
        docker push "$repository:$tag${spec#*:}"
    done
}

# Builds and pushes the image (unless --skip-build), applies the stack with its tag (unless
# --skip-apply) and reads the stack's outputs into $outputs. The tag is --image-tag, or the
# commit's when building; image_changed says whether there is a new image to run.
deploy_stack() {
    local repository tag_var=()
    image_changed=0
    if [[ -n "$image_tag" ]]; then
        image_changed=1
    elif ((!skip_build)); then
        image_tag="$(default_tag)"
        image_changed=1
    fi

    # The repository exists before the first apply only if the stack does: a first deployment
    # is apply, build, push, apply (Terraform creates the repository, then the job uses the image).
    outputs="$(stack_outputs 2>/dev/null || echo '{}')"
    if ((!skip_build)); then
        repository="$(output ecr_repository_url)"
        if [[ -z "$repository" ]]; then
            ((!skip_apply)) || die "no ecr_repository_url in the stack's outputs"
            log "creating the stack's repository first"
            "$TERRAFORM" -chdir="$TF_DIR" apply "${auto_approve[@]}" \
                -target=module.core.aws_ecr_repository.this
            outputs="$(stack_outputs)"
            repository="$(output ecr_repository_url)"
        fi
        build_and_push "$repository" "$image_tag" "$(output aws_region)"
    fi

    if ((!skip_apply)); then
        log "applying $TF_DIR${image_tag:+ with image_tag=$image_tag}"
        [[ -z "$image_tag" ]] || tag_var=(-var "image_tag=$image_tag")
        "$TERRAFORM" -chdir="$TF_DIR" apply "${auto_approve[@]}" "${tag_var[@]}"
    fi
    outputs="$(stack_outputs)"
    [[ "$outputs" != "{}" ]] || die "the stack has no outputs: apply it first (or pass --outputs)"
}

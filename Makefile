# One entry point for everything. Each target installs what it needs into the repository
# (.venv, node_modules) and is quick when nothing changed.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CDK := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 node_modules/.bin/cdk
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: demo viewer up test lint synth bench mutate image image-test-arm64 image-lock image-push clean

$(STAMP): requirements.txt requirements-dev.txt container/requirements.txt lambda_src/requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

# checkov in a venv of its own: its pinned boto3 conflicts with requirements-dev.txt.
$(CHECKOV_STAMP): requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-checkov.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

## demo: the main job, end to end on an embedded AWS (moto server): deploy, trigger, process.
demo: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m local_aws.demo

## viewer: after make demo, a page on localhost where each demo image deep-zooms in OpenSeadragon
## and opens in Mirador from its manifest (both from node_modules; Ctrl-C stops it).
viewer: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m local_aws.viewer

## up: deploy the stack on the embedded AWS and keep it running until Ctrl-C; prints the export
## lines for another shell. UP_ARGS= passes options, e.g. UP_ARGS="--port 4566 -c queueBatchWindowSeconds=1"
## (python -m local_aws.up --help lists them).
UP_ARGS ?=
up: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m local_aws.up $(UP_ARGS)

## test: ruff, the whole test suite, the Lambda's tests again on the Lambda's own Python (a cached
## Debian chroot), cdk synth (cdk-nag) and cfn-lint on the templates.
test: lint $(STAMP) $(NODE_STAMP) $(CHECKOV_STAMP)
	$(MAKE) --no-print-directory image
	$(BIN)/python -m pytest -q
	$(BIN)/python -m image_build.runtime_python --if-available
	$(MAKE) --no-print-directory synth

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint container/Dockerfile

## synth: synthesize through the pinned CDK CLI (cdk-nag fails it on any finding), then cfn-lint,
## then checkov (any finding not acknowledged in the template's Metadata fails it; offline).
synth: $(STAMP) $(NODE_STAMP) $(CHECKOV_STAMP)
	$(CDK) synth --quiet --output cdk.out
	$(BIN)/cfn-lint --ignore-checks W3005 -- cdk.out/*.template.json
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --framework cloudformation --quiet --compact \
		--skip-download -f cdk.out/*.template.json

## bench: speed and memory figures beside the reference pyvips pipeline and Pillow.
bench: $(STAMP)
	$(BIN)/python -m bench.run

## mutate: the mutation run over container/iiif_process, lambda_src/iiif_process_ecs and stacks:
## each small change to the code is run against the tests that execute its line; prints the
## score (target 85%) and the survivors. Long: MUTATE_ARGS="--sample 20" for an estimate.
mutate: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m mutation $(MUTATE_ARGS)

## image: build container/ here without Docker (buildah on a debootstrapped stand-in base, cached in
## ~/.cache/iiif-image) and print its labels and size. Says why and goes on where buildah,
## debootstrap or root are absent (.ci/run installs them); tests/container/test_image.py then skips.
image: $(STAMP)
	$(BIN)/python -m image_build --if-available

## image-test-arm64: the same build and in-image tests for arm64 under qemu-user-static (slow).
image-test-arm64: $(STAMP)
	$(BIN)/python -m image_build --arch arm64
	IIIF_IMAGE_ARCH=arm64 $(BIN)/python -m pytest -q tests/container/test_image.py

## image-lock: regenerate container/requirements.lock and requirements-build.lock (every wheel's
## hash of each pin, so x86_64 and aarch64 alike) after changing container/requirements*.txt.
PIP_TOOLS := pip-tools==7.6.2
LOCK_FLAGS := -q --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links
image-lock:
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && $(PYTHON) -m venv "$$tmp" && \
	"$$tmp/bin/pip" install -q --disable-pip-version-check $(PIP_TOOLS) && cd container && \
	"$$tmp/bin/pip-compile" $(LOCK_FLAGS) -o requirements.lock requirements.txt && \
	"$$tmp/bin/pip-compile" $(LOCK_FLAGS) --allow-unsafe -o requirements-build.lock requirements-build.txt

## image-push: build the container for CPU_ARCH (default amd64) and push it to the stack's repository
## with tag TAG; then deploy with `-c imageTag=TAG`. CONFIG= and INSTRUCTIONS= (paths inside
## container/) bake other go-iiif files in, as the seed's docker-process target did.
## Needs Docker and AWS credentials.
STACK ?= IiifProcessStack
TAG ?= $(shell git rev-parse --short HEAD)
CPU_ARCH ?= amd64
image-push:
	@repo=$$(aws cloudformation describe-stacks --stack-name $(STACK) --query "Stacks[0].Outputs[?OutputKey=='RepositoryUri'].OutputValue" --output text) && \
	aws ecr get-login-password | docker login --username AWS --password-stdin "$${repo%%/*}" && \
	docker build --platform linux/$(CPU_ARCH) \
		$(if $(CONFIG),--build-arg CONFIG=$(CONFIG)) $(if $(INSTRUCTIONS),--build-arg INSTRUCTIONS=$(INSTRUCTIONS)) \
		-t "$$repo:$(TAG)" container && \
	docker push "$$repo:$(TAG)"

clean:
	rm -rf cdk.out demo-output bench-output

# The README's commands. Every target sets up .venv first, so a fresh clone needs only Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_DATA ?= ../shared/data
export BENTOML_DO_NOT_TRACK := True

.PHONY: cluster-job preview scan topology setup lock demo test browser wrk screenshots mutation lint lint-workflows bench bench-training bench-serving bench-drift bench-log bench-scale quality clean \
	ci-postgres infra-changed image image-name push-image deploy rollback-deploy smoke

# Installs exactly the hashed lock (pip refuses any file whose hash differs; --no-deps because the lock
# already holds every dependency), then the project itself without build isolation: nothing is resolved
# or fetched unhashed. `pip check` proves the locked set is consistent.
$(BIN)/pigeonhole: pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $@

setup: $(BIN)/pigeonhole ## create .venv with the project and its dev tools, from requirements-dev.lock

UV_COMPILE = $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--custom-compile-command 'make lock'

lock: setup ## re-resolve the hashed lock files after editing requirements.txt or pyproject.toml's extras
	$(UV_COMPILE) pyproject.toml --extra dev --extra infra --extra spark --refresh-package pigeonhole -o requirements-dev.lock
	$(UV_COMPILE) requirements.txt -c requirements-dev.lock -o requirements.lock

demo: setup ## the main job on the embedded defaults (SQLite MLflow, files under .pigeonhole/)
	$(BIN)/pigeonhole demo

test: setup browser ## lint, type-check, the whole test suite (make topology included), make scan and make mutation
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(MAKE) scan
	$(BIN)/pytest --numprocesses 2 --dist loadgroup
	$(MAKE) mutation

mutation: setup ## mutmut: the gate, drift decision, request schema and PII mask vs their fast tests; fails under 90 % killed
	rm -rf mutants && mkdir -p build
	$(BIN)/mutmut run > build/mutmut.log 2>&1 || { tail -n 30 build/mutmut.log; exit 1; }
	$(BIN)/python -m tests.mutation --floor 0.9

# $(call debian,PACKAGE,WITHOUT IT): install a missing Debian package (as root), else say what is lost
debian = command -v $(1) >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	&& { apt-get install -y -q $(1) >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $(1) >/dev/null; }; }; } \
	|| echo "no $(1) here: $(2) (Debian: sudo apt-get install $(1))"

browser: ## Debian's Chromium, for the browser tests of the drift report and index (apt-get, as root)
	@$(call debian,chromium,the browser tests will skip)

lint: setup ## ruff (rules and format) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

lint-workflows: setup ## actionlint and GitHub's workflow JSON schema over .github/workflows
	$(BIN)/actionlint -no-color -shellcheck $(BIN)/shellcheck
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

SCAN_VENV := .venv-scan
CHECKOV := checkov==3.3.30

$(SCAN_VENV)/bin/checkov:
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet $(CHECKOV)

scan: setup $(SCAN_VENV)/bin/checkov ## checkov over every rendered stack and the workflows (infra/checkov.yaml)
	rm -rf build/manifests
	$(BIN)/python -m tests.infra.scan build/manifests
	$(SCAN_VENV)/bin/checkov --config-file infra/checkov.yaml -d build/manifests --framework kubernetes
	$(SCAN_VENV)/bin/checkov --config-file infra/checkov.yaml -d .github/workflows --framework github_actions

topology: setup ## the dev stack's rendered manifests run as local processes and close the loop (needs root, PostgreSQL)
	$(BIN)/pytest tests/infra/test_topology.py -q -s

quality: setup ## our model vs the TF-IDF + LinearSVC reference on ../shared/data
	$(BIN)/python -m benchmarks.quality --data-dir $(SHARED_DATA)

screenshots: setup browser ## the README's screenshots of the drift report, index and Evidently dashboard (after make demo)
	$(BIN)/python docs/screenshots.py --home .pigeonhole --out docs/images

bench-training: setup ## fit + log time and peak memory per ../shared/data file
	$(BIN)/python -m benchmarks.training --data-dir $(SHARED_DATA)

bench-scale: setup ## cost vs catalogue size: train time, peak memory, artifact, suggest cost at 10k/100k/1M rows
	$(BIN)/python -m benchmarks.scale --data-dir $(SHARED_DATA) $(if $(SIZES),--sizes $(SIZES))

bench: bench-training bench-serving bench-drift bench-log bench-scale

clean:
	rm -rf .pigeonhole .pytest_cache .mypy_cache .ruff_cache

wrk: ## Debian's wrk, the serving benchmark's load generator (apt-get, as root)
	@$(call debian,wrk,make bench-serving cannot run)

bench-serving: setup wrk ## this service vs mlflow models serve vs bare FastAPI vs in-process
	$(BIN)/python -m benchmarks.serving --catalogue $(SHARED_DATA)/flipkart.csv.gz

bench-drift: setup ## false alarms, detection on real drift, accuracy recovered
	$(BIN)/python -m benchmarks.drift --data-dir $(SHARED_DATA)

bench-log: setup ## log ingest records/s per sink, drift job time and memory on 100k-10M-row windows
	$(BIN)/python -m benchmarks.log

# ---- CI/CD (the workflows call these; each needs what its comment says) ----

# GitHub's Ubuntu runners ship PostgreSQL stopped and password-protected; the tests expect the set-up
# of the development machine: a cluster on 127.0.0.1:5432, trust auth, a database `test`. Needs root.
ci-postgres:
	version=$$(ls /etc/postgresql | head -n1) && \
	echo "host all all 127.0.0.1/32 trust" > /tmp/pg_hba.conf && \
	cat /etc/postgresql/$$version/main/pg_hba.conf >> /tmp/pg_hba.conf && \
	install -o postgres -m 640 /tmp/pg_hba.conf /etc/postgresql/$$version/main/pg_hba.conf && \
	pg_ctlcluster --skip-systemctl-redirect $$version main start && \
	until pg_isready -h 127.0.0.1 -q; do sleep 1; done && \
	(psql -h 127.0.0.1 -U postgres -tc "select 1 from pg_database where datname = 'test'" | grep -q 1 || \
	 psql -h 127.0.0.1 -U postgres -c "create database test")

BASE ?= origin/main

infra-changed: ## prints infra=true when infra/ differs from BASE (a GitHub step output line)
	@if git diff --quiet $(BASE) HEAD -- infra/; then echo infra=false; else echo infra=true; fi

IMAGE ?= pigeonhole:dev
# registries take lower-case names only; GitHub's owner/repository may have capitals
IMAGE_NAME := $(shell printf '%s' '$(IMAGE)' | tr '[:upper:]' '[:lower:]')
STACK ?= dev
PLAN ?=
BENTOML_HOME ?= $(CURDIR)/.pigeonhole/bentoml

image: setup ## the platform image: the Bento of the service and its code, containerized (needs Docker)
	$(BIN)/pigeonhole build
	BENTOML_HOME=$(BENTOML_HOME) $(BIN)/bentoml containerize pigeonhole:latest --image-tag $(IMAGE_NAME)

# the registry's digest, not the tag: a tag can be moved, so every stack runs exactly the pushed build
image-name: ## prints image=NAME@sha256:DIGEST of the pushed IMAGE (a GitHub step output line; after push-image)
	@echo image=$$(docker inspect --format '{{index .RepoDigests 0}}' $(IMAGE_NAME))

push-image: ## push IMAGE (log in to the registry first)
	docker push $(IMAGE_NAME)

PREVIOUS_IMAGE_FILE = .pigeonhole/previous-image-$(STACK)

preview: setup ## pulumi preview of STACK with IMAGE: the diff reviewers read, saved as the plan `deploy PLAN=` applies
	mkdir -p .pigeonhole
	cd infra && pulumi config set pigeonhole:image $(IMAGE_NAME) --stack $(STACK) && \
	pulumi preview --diff --policy-pack policy --stack $(STACK) --save-plan ../.pigeonhole/plan-$(STACK).json

deploy: setup ## pulumi up of STACK with IMAGE (exactly the previewed plan with PLAN=file), recording the image it replaces
	mkdir -p .pigeonhole
	cd infra && (pulumi stack output image --stack $(STACK) 2>/dev/null || true) > ../$(PREVIOUS_IMAGE_FILE)
	cd infra && pulumi config set pigeonhole:image $(IMAGE_NAME) --stack $(STACK) && \
	pulumi up --yes --skip-preview --policy-pack policy --stack $(STACK) $(if $(PLAN),--plan ../$(PLAN))

rollback-deploy: setup ## pulumi up of STACK with the image that was deployed before the last `make deploy`
	@test -s $(PREVIOUS_IMAGE_FILE) || { echo "no earlier deployed image of $(STACK) (first deploy?)"; exit 1; }
	$(MAKE) deploy STACK=$(STACK) IMAGE="$$(cat $(PREVIOUS_IMAGE_FILE))" PLAN=

TEMPLATE ?= pigeonhole-retrain

cluster-job: setup ## a Job from STACK's CronJob TEMPLATE (pigeonhole-retrain|-promote) in its cluster: waits, prints its log, then promoted=true|false
	@mkdir -p .pigeonhole && cd infra && \
	pulumi stack output --show-secrets kubeconfig --stack $(STACK) > ../.pigeonhole/kubeconfig-$(STACK) && \
	ns=$$(pulumi stack output namespace --stack $(STACK)) && job=$(TEMPLATE)-$$(date +%Y%m%d%H%M%S) && \
	export KUBECONFIG=../.pigeonhole/kubeconfig-$(STACK) && \
	kubectl -n "$$ns" create job "$$job" --from=cronjob/$(TEMPLATE) >&2 && \
	until kubectl -n "$$ns" get job "$$job" -o jsonpath='{.status.conditions[*].type}' | grep -qE 'Complete|Failed'; do \
		sleep 15; done && \
	kubectl -n "$$ns" logs "job/$$job" >&2; \
	code=$$(kubectl -n "$$ns" get pods -l job-name="$$job" \
		-o jsonpath='{.items[-1:].status.containerStatuses[0].state.terminated.exitCode}') && \
	case "$$code" in 0) echo promoted=true ;; 3) echo promoted=false ;; *) echo "$$job failed: exit $$code" >&2; exit 1 ;; esac

smoke: setup ## a real /readyz and /suggest against STACK's deployed service (SMOKE_API_KEY: a client key)
	$(BIN)/pigeonhole smoke "$$(cd infra && pulumi stack output serviceUrl --stack $(STACK))"

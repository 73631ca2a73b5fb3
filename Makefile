# All set-up happens here, so that a fresh clone needs only `make atlas` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: atlas test test-slow setup browser serve bench clean

atlas: $(STAMP)            ## offline preview atlas on the embedded weights -> site/
	$(PY) build.py --preview
	$(PY) -m mkdocs build --strict --quiet
	@echo "Atlas built in site/. Open it with: make serve  (http://127.0.0.1:8000/)"

test: $(STAMP) browser     ## the test suite (what CI runs)
	$(PY) -m pytest -q

test-slow: $(STAMP) browser  ## the slower checks kept out of CI
	$(PY) -m pytest -q -m slow

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

browser:                   ## Debian's headless Chromium for the site tests
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }

serve: $(STAMP)
	$(PY) -m http.server --directory site 8000 --bind 127.0.0.1

bench: $(STAMP)
	$(PY) bench/bench_render.py

clean:
	rm -rf site .pytest_cache

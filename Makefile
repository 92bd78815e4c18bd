# radioseg — every target installs what it needs into .venv first.
#   make all    simulate -> train -> evaluate -> execute the notebooks -> build the book
#   make test   lint (ruff) and run the test suite
PYTHON ?= python3.11
VENV   ?= .venv
PROFILE ?= quick
BIN     = $(VENV)/bin
# Real data files: $RADIOSEG_DATA if set, else ../shared/data/sdc1 and ../shared/data/other
# beside the checkout when present (developer machines and CI), else the registry's
# data/cache download folder.
SHARED_DATA := $(abspath ../shared/data)
export RADIOSEG_DATA ?= $(if $(wildcard $(SHARED_DATA)/sdc1/README.md),$(SHARED_DATA)/sdc1:$(SHARED_DATA)/other,)
LOCK    = requirements/lock-cpu.txt
# Disk the pinned install takes, with pip's temporary files (the venv alone is 3.2 GiB).
INSTALL_GIB = 4
STAMP   = $(VENV)/.installed-$(shell cat $(LOCK) pyproject.toml | sha256sum | cut -c1-12)

.PHONY: all test venv venv-gpu book lab benchmarks chromium clean

all: $(STAMP) chromium
	$(BIN)/radioseg book --profile $(PROFILE)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

venv: $(STAMP)

$(STAMP): $(LOCK) pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	@$(PYTHON) -c "import shutil, sys; free = shutil.disk_usage('.').free / 2**30; \
	  need = 'the install into $(VENV) needs about $(INSTALL_GIB) GiB'; \
	  free < $(INSTALL_GIB) and sys.exit(f'error: {free:.1f} GiB free on this disk; {need}')"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	rm -f $(VENV)/.installed-* && touch $@

# GPU machines: the same pins with the CUDA build of TensorFlow.
venv-gpu: $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	sed 's/^tensorflow-cpu==/tensorflow[and-cuda]==/' $(LOCK) > $(VENV)/lock-gpu.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/lock-gpu.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .

book: $(STAMP)
	$(BIN)/radioseg book --profile $(PROFILE) --build-only

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

# The benchmarks that measure without arguments; end_to_end.py (field sizes), model_speed.py
# (a model to compare with) and the GPU scripts are run by hand, as their docstrings say.
BENCHMARKS = simulate masks finders full_image training inference_options

benchmarks: $(STAMP)
	for f in $(BENCHMARKS); do $(BIN)/python benchmarks/$$f.py || exit 1; done

# Headless Chromium renders every page of the book for the quality gate (Debian package).
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
	  echo "warning: chromium not installed; the book's screenshot check will be skipped" >&2

clean:
	rm -rf _build data/generated

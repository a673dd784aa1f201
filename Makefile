# One command each: `make demo` runs the main job, `make test` runs the tests.
# Both create .venv and install into it first when needed.

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned first: an unpinned resolve would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q "torch==2.13.0"
	# setuptools says "Editable installation." (an information, not a problem) on every editable install.
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/trendcast demo --duration 45

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 3 --dist loadfile

bench: $(STAMP)
	$(BIN)/trendcast bench

clean:
	rm -rf $(VENV) .trendcast .pytest_cache

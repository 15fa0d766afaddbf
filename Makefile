# The two commands: `make run` (the whole stack on this machine) and `make test` (the suite).
# Without DATABASE_URL / REDIS_URL an embedded PostgreSQL and Valkey (Redis-compatible) are used.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench smoke migrate clean-var

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q --upgrade pip
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m instagram.devstack run

TYPED := instagram accounts/services accounts/selectors.py posts/services posts/selectors.py \
	posts/hydration.py \
	feed media/services media/selectors.py

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	INSTAGRAM_TESTING=1 $(VENV)/bin/mypy $(TYPED)
	$(PY) -m instagram.devstack exec -- $(VENV)/bin/pytest $(PYTEST_ARGS)

smoke: $(STAMP)
	$(PY) -m instagram.devstack smoke

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	INSTAGRAM_TESTING=1 $(VENV)/bin/mypy $(TYPED)

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

migrate: $(STAMP)
	$(PY) -m instagram.devstack exec -- $(PY) manage.py migrate_all

bench: $(STAMP)
	$(PY) -m instagram.devstack exec -- sh -c '$(PY) manage.py migrate_all --noinput >/dev/null && $(PY) bench/ids.py'


clean-var:
	rm -rf var

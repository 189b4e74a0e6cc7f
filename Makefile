# Paywatch: `make run` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run demo test test-sqlite install migrate bench clean help

help:
	@echo "make run    - set up and start everything (web on PORT, default 8000)"
	@echo "make test   - set up and run all tests (PostgreSQL too when TEST_DATABASE_URL is set)"
	@echo "make demo   - make run plus the sandbox (fake portal, WhatsApp, IMAP, gateway)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/flask --app wsgi db upgrade

run: install
	$(BIN)/flask --app wsgi dev up

# The sandbox's own credentials (sandbox/__main__.py); the demo sources name these variables.
DEMO_ENV := WPPCONNECT_URL=http://127.0.0.1:21465 WPPCONNECT_SECRET_KEY=THISISMYSECURETOKEN \
	ACME_PORTAL_USER=demo ACME_PORTAL_PASSWORD=demo-pass SHOP_IMAP_USER=payments SHOP_IMAP_PASSWORD=payments-pass \
	IOTEC_CLIENT_ID=sandbox-client IOTEC_CLIENT_SECRET=sandbox-secret PAYWATCH_PENDING_ALERT_SECONDS=30 \
	PAYWATCH_CURRENCY=UGX PAYWATCH_PHONE_REGION=UG PAYWATCH_TIMEZONE=Africa/Kampala \
	PAYWATCH_WEBHOOKS_ALLOW_PRIVATE=1

demo: install
	env $(DEMO_ENV) $(BIN)/flask --app wsgi dev up --demo

# Three pytest processes on two cores: most tests wait on workers, servers and browsers.
# worksteal: a pytest process that ran out of tests takes some from one still busy (the long
# tests are handed out first, tests/conftest.py), instead of waiting for it at the end.
TEST_WORKERS ?= 3

test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache

# One image for every Paywatch process (web, worker, scheduler, mailbox, the migrate step).
# It installs the runtime requirements only (no test tools), plus PostgreSQL's client tools
# for `flask --app wsgi db backup` / `db restore` (pg_dump / pg_restore 15, as the postgres:15 service).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PAYWATCH_ENV=production
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system --home /app paywatch && mkdir -p instance && chown paywatch instance
USER paywatch
EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "wsgi:app"]

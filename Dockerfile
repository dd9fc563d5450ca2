# The API: `gunicorn api:app`. gunicorn.conf.py (read from the workdir) binds 0.0.0.0:$PORT (default 5000)
# and sizes the workers to the CPUs (WEB_CONCURRENCY overrides). Settings come from the environment.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin datafy
WORKDIR /app

COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY api.py gunicorn.conf.py ./
COPY datafy/ datafy/
# Compile while still root: the non-root user cannot write __pycache__ next to the code.
RUN python -m compileall -q /app

USER datafy
EXPOSE 5000

# No curl in slim images. urlopen raises on a refused connection, a timeout or a 503 (Redis down).
HEALTHCHECK --interval=15s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % (os.environ.get('PORT') or '5000'), timeout=4)"]

CMD ["gunicorn", "api:app"]

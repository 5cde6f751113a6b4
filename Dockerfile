# registry-auditor: `auditor serve` in a slim, non-root image.
#   docker build -t registry-auditor .
#   docker run -v auditor-state:/var/lib/auditor -v $PWD/auditor.yaml:/var/lib/auditor/auditor.yaml:ro \
#              -p 9464:9464 registry-auditor
# The build stage makes a wheel; the runtime stage installs only that wheel and its
# dependencies (the same steps tests/integration/test_dockerfile.py runs in a fresh venv).

FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir "build==1.2.2.post1"
COPY pyproject.toml README.md ./
COPY auditor ./auditor
RUN python -m build --wheel --outdir /dist

FROM python:3.11-slim
RUN groupadd --system --gid 10001 auditor \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/auditor --create-home auditor \
    && mkdir -p /var/lib/auditor \
    && chown auditor:auditor /var/lib/auditor
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist
USER 10001
# The working directory is the state volume: ./auditor.yaml (the default config) and
# ./auditor.db (the default state) live there.
WORKDIR /var/lib/auditor
VOLUME ["/var/lib/auditor"]
# Inside a container the listener must not be loopback-only; server.listen in the config wins.
ENV AUDITOR_LISTEN=0.0.0.0:9464 \
    PYTHONUNBUFFERED=1
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]
ENTRYPOINT ["auditor"]
CMD ["serve"]

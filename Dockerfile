# registry-auditor image: build a wheel, install it into a slim runtime, run as non-root.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY auditor ./auditor
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /dist

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /home/auditor --create-home auditor
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl
USER auditor
WORKDIR /home/auditor
# Mount the config at /home/auditor/auditor.yaml (the default --config) and the notation
# configuration at /home/auditor/.config/notation (the default trust policy and store).
ENTRYPOINT ["auditor"]
CMD ["audit", "now"]

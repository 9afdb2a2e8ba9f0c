# The container image of the heavy scheduled jobs (serverless.yml, provider.ecr.images): one
# image per extra, chosen by the EXTRA build argument: `matching` for matchRun (Splink, DuckDB,
# pyarrow: about 345 MiB unzipped), `analytics` for analyticsRefresh (scipy, numpy: about
# 292 MiB), both over Lambda's 250 MB for a zip; an image may hold 10 GB. It installs the
# requirement set `make lambda-package` resolved and checked for the runtime
# (build/<extra>-requirements.txt, pinned, without aiosqlite and the local-only packages),
# exactly as resolved (--no-deps), into the function's code directory, which comes before the
# runtime's own boto3 on sys.path, as in the zip packages. The function names its handler
# (`image.command` in serverless.yml).
FROM public.ecr.aws/lambda/python:3.12-arm64

ARG EXTRA
COPY build/${EXTRA}-requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --no-deps --no-compile --only-binary=:all: \
        --target "${LAMBDA_TASK_ROOT}" -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY pyproject.toml README.md /tmp/cdlm/
COPY src /tmp/cdlm/src
RUN pip install --no-cache-dir --no-deps --no-compile --target "${LAMBDA_TASK_ROOT}" /tmp/cdlm \
    && rm -rf /tmp/cdlm \
    && python -m compileall -q -j 0 --invalidation-mode unchecked-hash "${LAMBDA_TASK_ROOT}"

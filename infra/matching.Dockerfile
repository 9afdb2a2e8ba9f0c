# matchRun's container image (serverless.yml, provider.ecr.images.matching): the `matching` extra
# (Splink, DuckDB, pyarrow) is about 345 MiB unzipped, over Lambda's 250 MB for a zip, and an
# image may hold 10 GB. It installs the requirement set `make lambda-package` resolved and
# checked for the runtime (build/matching-requirements.txt, pinned, without aiosqlite and the
# local-only packages), exactly as resolved (--no-deps), into the function's code directory,
# which comes before the runtime's own boto3 on sys.path, as in the zip packages.
FROM public.ecr.aws/lambda/python:3.12-arm64

COPY build/matching-requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --no-deps --no-compile --only-binary=:all: \
        --target "${LAMBDA_TASK_ROOT}" -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY pyproject.toml README.md /tmp/cdlm/
COPY src /tmp/cdlm/src
RUN pip install --no-cache-dir --no-deps --no-compile --target "${LAMBDA_TASK_ROOT}" /tmp/cdlm \
    && rm -rf /tmp/cdlm \
    && python -m compileall -q -j 0 --invalidation-mode unchecked-hash "${LAMBDA_TASK_ROOT}"

CMD ["cdlm.lambda_handler.match_run"]

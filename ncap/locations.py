"""Where NeuroCAAS jobs keep their results: a local folder or an S3 prefix, read alike.

A location is a path (``runs/ncap``) or an S3 URI (``s3://bucket/group/results``).
On S3 the client is boto3's default one, so the usual environment applies
(``AWS_PROFILE``, ``AWS_ENDPOINT_URL`` for an S3-compatible server).
"""

from __future__ import annotations

import shutil
from pathlib import Path

S3 = "s3://"


def is_s3(location: str) -> bool:
    """Whether ``location`` is an S3 URI (``s3://bucket/prefix``)."""
    return str(location).startswith(S3)


def join(location: str, *names: str) -> str:
    """``location`` and ``names`` joined with ``/``, for a path or an S3 URI."""
    return "/".join([str(location).rstrip("/"), *names])


def _split(uri: str) -> tuple[str, str]:
    """An S3 URI's bucket and key (a prefix without its trailing ``/``)."""
    bucket, _, key = uri[len(S3) :].partition("/")
    if not bucket:
        raise ValueError(f"an S3 location must name a bucket, s3://bucket/prefix; got {uri!r}")
    return bucket, key.rstrip("/")


def _client():
    import boto3

    return boto3.client("s3")


def list_files(location: str) -> list[str]:
    """Every file under ``location``, at any depth, as paths relative to it, sorted.

    A location that does not exist holds no files.
    """
    if not is_s3(location):
        root = Path(location)
        if not root.is_dir():
            return []
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    bucket, prefix = _split(location)
    start = f"{prefix}/" if prefix else ""
    found = []
    for page in _client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start):
        found.extend(item["Key"][len(start) :] for item in page.get("Contents", []))
    return sorted(name for name in found if name and not name.endswith("/"))


def download(location: str, name: str, target: Path) -> Path:
    """Copy file ``name`` (relative to ``location``) to the local path ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if is_s3(location):
        bucket, prefix = _split(location)
        key = f"{prefix}/{name}" if prefix else name
        _client().download_file(bucket, key, str(target))
    else:
        shutil.copyfile(Path(location) / name, target)
    return target


def upload_tree(source: Path, location: str) -> list[str]:
    """Copy every file under the local folder ``source`` to ``location``, keeping sub-folders.

    Returns
    -------
    list of str
        The names written, relative to ``location``.
    """
    source = Path(source)
    names = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    if is_s3(location):
        bucket, prefix = _split(location)
        client = _client()
        for name in names:
            client.upload_file(str(source / name), bucket, f"{prefix}/{name}" if prefix else name)
    else:
        for name in names:
            target = Path(location) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, target)
    return names

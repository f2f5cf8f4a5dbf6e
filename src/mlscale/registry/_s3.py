"""The S3 calls the object-store registry is built from: a bucket and prefix, errors without secrets.

One small surface over boto3 (get, conditional put, list, delete) so the
registry logic in :mod:`mlscale.registry._objectstore` reads as registry
logic. Every client failure becomes one :class:`~mlscale.errors.RegistryError`
carrying the S3 error code and message, scrubbed of any secret in the
environment; a lost conditional write is :class:`PreconditionFailedError`.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import re
from collections.abc import Iterator
from typing import Any

from mlscale.errors import DependencyError, RegistryError

__all__ = ["CREDENTIAL_HINT", "PreconditionFailedError", "S3Bucket", "parse_s3_uri", "scrub"]

log = logging.getLogger("mlscale.registry")

_URI = re.compile(r"s3:/+(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?")
CREDENTIAL_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, ~/.aws/credentials, an instance role), "
    "and AWS_ENDPOINT_URL for a server other than AWS"
)


def parse_s3_uri(location: str | os.PathLike[str]) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix``; the prefix has no leading or trailing ``/``.

    ``s3:/bucket`` (one slash) is accepted too: that is what ``pathlib.Path``
    makes of ``s3://bucket`` when a command-line flag was parsed as a path.

    >>> parse_s3_uri("s3://models/prod/registry/")
    ('models', 'prod/registry')
    >>> parse_s3_uri("s3:/models")
    ('models', '')
    """
    text = str(location)
    match = _URI.fullmatch(text)
    if match is None:
        raise RegistryError(
            f"invalid object-store registry {text!r}: expected s3://BUCKET[/PREFIX] "
            "(a bucket name of 3 to 63 characters a-z, 0-9, '.' and '-')"
        )
    prefix = (match.group("prefix") or "").strip("/")
    return match.group("bucket"), re.sub("/+", "/", prefix)


def scrub(text: str) -> str:
    """``text`` with any secret from the environment blanked out (defence in depth)."""
    for key in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        secret = os.environ.get(key)
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


class PreconditionFailedError(Exception):
    """A conditional write lost: someone else wrote the object first."""


class S3Bucket:
    """``s3://bucket/prefix`` and the calls made on it (the client is made on first use)."""

    def __init__(self, location: str) -> None:
        self.bucket, self.prefix = parse_s3_uri(location)
        self.location = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self._client_obj: Any = None
        self._conditional = True

    # -- S3 plumbing -------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client_obj is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise DependencyError(
                    f"the object-store registry {self.location} needs boto3",
                    hint="install it with `pip install 'mlscale[s3]'`",
                ) from None
            config = Config(
                retries={"max_attempts": 4, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
                max_pool_connections=16,
            )
            self._client_obj = boto3.session.Session().client("s3", config=config)
        return self._client_obj

    def key(self, *parts: str) -> str:
        return "/".join([self.prefix, *parts] if self.prefix else parts)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Turn client failures into one clear :class:`RegistryError` that never holds a secret."""
        self.client  # noqa: B018 - makes the client first, so a missing boto3 is one clear error
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            yield
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            message = str(err.response.get("Error", {}).get("Message", "")) or code
            if code == "NoSuchBucket":
                raise RegistryError(
                    f"could not {action}: the bucket {self.bucket!r} does not exist",
                    hint=f"create it, or pass the right --registry (now {self.location})",
                ) from None
            hint = CREDENTIAL_HINT if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied") else None
            raise RegistryError(scrub(f"could not {action}: {code}: {message}"), hint=hint) from None
        except NoCredentialsError:
            raise RegistryError(f"could not {action}: no credentials found", hint=CREDENTIAL_HINT) from None
        except BotoCoreError as err:
            raise RegistryError(scrub(f"could not {action}: {err}")) from None

    def get(self, key: str, action: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or ``None`` if there is no such object."""
        from botocore.exceptions import ClientError

        with self.errors(action):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            return response["Body"].read(), str(response["ETag"])

    def put(self, key: str, body: bytes, action: str, *, if_none_match: bool = False, if_match: str = "") -> None:
        """Write an object, optionally only if absent or unchanged; raises :class:`PreconditionFailedError`."""
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body}
        if self._conditional and if_none_match:
            kwargs["IfNoneMatch"] = "*"
        if self._conditional and if_match:
            kwargs["IfMatch"] = if_match
        with self.errors(action):
            try:
                self.client.put_object(**kwargs)
            except ClientError as err:
                code = err.response.get("Error", {}).get("Code")
                status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                    raise PreconditionFailedError(key) from None
                if (code == "NotImplemented" or status == 501) and (if_none_match or if_match):
                    log.warning(
                        "%s does not support conditional writes: versions and aliases are last-writer-wins; "
                        "serialise concurrent publishers yourself",
                        self.location,
                    )
                    self._conditional = False
                    self.put(key, body, action)
                    return
                raise

    def list(self, prefix: str, action: str, *, delimiter: str = "") -> tuple[builtins.list[str], builtins.list[str]]:
        """(keys, common prefixes) under ``prefix``, all pages."""
        keys: builtins.list[str] = []
        prefixes: builtins.list[str] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        with self.errors(action):
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                keys.extend(str(o["Key"]) for o in page.get("Contents", []))
                prefixes.extend(str(p["Prefix"]) for p in page.get("CommonPrefixes", []))
        return keys, prefixes

    def delete(self, keys: builtins.list[str], action: str) -> None:
        with self.errors(action):
            for start in range(0, len(keys), 1000):
                batch = [{"Key": k} for k in keys[start : start + 1000]]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

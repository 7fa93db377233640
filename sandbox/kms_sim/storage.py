"""The simulator's access to a party's vault: S3 (the AWS stand-in), a directory, or memory.

S3 is reached through boto3 at ``[aws].s3_endpoint`` with credentials from the environment,
exactly as a node's IRSA role would reach the real bucket; nothing is stubbed.
"""
import os
import threading


class StorageError(Exception):
    pass


class VaultStore(object):
    def __init__(self, vault, region=None, endpoint_url=None):
        self.vault = vault
        self.region = region
        self.endpoint_url = endpoint_url
        self._ram = {}
        self._lock = threading.Lock()
        self._client = None

    # -- S3 ------------------------------------------------------------------
    def _s3(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3", region_name=self.region or "us-east-1", endpoint_url=self.endpoint_url,
                config=Config(s3={"addressing_style": "path"}, connect_timeout=2, read_timeout=5,
                              retries={"max_attempts": 2}, user_agent_extra="kms-sim"))
        return self._client

    def _s3_call(self, what, fn, **kwargs):
        try:
            return fn(**kwargs)
        except Exception as exc:  # botocore errors, connection errors
            raise StorageError("%s s3://%s/%s failed: %s" % (what, self.vault.bucket, kwargs.get("Key", kwargs.get("Prefix", "")), exc))

    # -- API -----------------------------------------------------------------
    def put(self, key, body):
        kind = self.vault.kind
        if kind == "s3":
            self._s3_call("PutObject", self._s3().put_object, Bucket=self.vault.bucket, Key=key, Body=body)
        elif kind == "file":
            path = os.path.join(self.vault.path, key.lstrip("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                handle.write(body)
        else:
            with self._lock:
                self._ram[key] = body

    def get(self, key):
        """Bytes stored at ``key``, or None when there is nothing."""
        kind = self.vault.kind
        if kind == "s3":
            try:
                return self._s3().get_object(Bucket=self.vault.bucket, Key=key)["Body"].read()
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code")
                if code in ("NoSuchKey", "404"):
                    return None
                raise StorageError("GetObject s3://%s/%s failed: %s" % (self.vault.bucket, key, exc))
        if kind == "file":
            path = os.path.join(self.vault.path, key.lstrip("/"))
            if not os.path.isfile(path):
                return None
            with open(path, "rb") as handle:
                return handle.read()
        with self._lock:
            return self._ram.get(key)

    def delete(self, key):
        kind = self.vault.kind
        if kind == "s3":
            self._s3_call("DeleteObject", self._s3().delete_object, Bucket=self.vault.bucket, Key=key)
        elif kind == "file":
            path = os.path.join(self.vault.path, key.lstrip("/"))
            if os.path.isfile(path):
                os.unlink(path)
        else:
            with self._lock:
                self._ram.pop(key, None)

    def list_names(self, folder):
        """Names directly under ``<prefix>/<folder>/``."""
        prefix = self.vault.key(folder) + "/"
        kind = self.vault.kind
        names = []
        if kind == "s3":
            paginator = self._s3().get_paginator("list_objects_v2")
            try:
                for page in paginator.paginate(Bucket=self.vault.bucket, Prefix=prefix):
                    for obj in page.get("Contents", []):
                        names.append(obj["Key"][len(prefix):])
            except Exception as exc:
                raise StorageError("ListObjectsV2 s3://%s/%s failed: %s" % (self.vault.bucket, prefix, exc))
        elif kind == "file":
            path = os.path.join(self.vault.path, prefix.lstrip("/"))
            if os.path.isdir(path):
                names = sorted(os.listdir(path))
        else:
            with self._lock:
                names = [k[len(prefix):] for k in self._ram if k.startswith(prefix)]
        return [n for n in names if n and "/" not in n]

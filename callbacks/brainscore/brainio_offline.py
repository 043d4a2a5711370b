"""Offline errors that know brainscore-vision's own data layer: a guard on brainscore-core's S3 access.

Every assembly and stimulus set brainscore-vision loads from S3 goes through brainscore-core's
``BotoFetcher.fetch`` (``brainscore_core.supported_data_standards.brainio.fetch``), where the file's
address, its sha1 (the cache sub-folder) and its S3 version are known; the data identifier is known
one call above, in ``s3.get_path``. :func:`install_offline_guard` wraps both, once per process:

* a file already in ``$BRAINIO_HOME/<sha1>/<filename>`` is used as brainscore-core would use it;
* a missing file with S3 unreachable (or ``NEUROALIGN_OFFLINE=1``) raises, within seconds instead of
  boto3's minutes of retries, one :class:`~neuroalign.core.errors.MissingFileError` line naming the
  data identifier, the expected path under ``$BRAINIO_HOME``, the sha1 and the address;
* a cached file whose sha1 differs raises one :class:`~neuroalign.core.errors.ConfigError` line
  naming the file (a ``ValueError``, as brainscore-core's own ``SHA1 mismatch``).

Data that a user's plugin registers in ``brainscore_vision.data_registry`` /
``stimulus_set_registry`` is used exactly as brainscore-vision uses it: the guard only acts on files
brainscore-core fetches.
"""

from __future__ import annotations

import contextvars
import functools
import os

from neuroalign.core.errors import ConfigError, MissingFileError
from neuroalign.core.offline import network_available

__all__ = ["BRAINIO_HOME_ENV", "install_offline_guard", "s3_address"]

#: environment variable of the BrainIO cache (the same one brainscore-core reads)
BRAINIO_HOME_ENV = "BRAINIO_HOME"
_GUARD = "_neuroalign_offline_guard"
#: the data identifier brainscore-core is fetching (set by the wrapped ``s3.get_path``)
_fetching: contextvars.ContextVar[str | None] = contextvars.ContextVar("neuroalign_brainio_identifier", default=None)


def s3_address(bucket: str, relative_path: str, version_id: str | None = None) -> str:
    """The https address of an S3 object (with ``?versionId=`` when a version is pinned)."""
    url = f"https://{bucket}.s3.amazonaws.com/{relative_path}"
    return url if not version_id or version_id == "null" else f"{url}?versionId={version_id}"


def install_offline_guard() -> None:
    """Wrap brainscore-core's S3 fetch (once per process) so missing files fail fast offline, in one line."""
    from brainscore_core.supported_data_standards.brainio import fetch, s3

    if getattr(fetch.BotoFetcher.fetch, _GUARD, False):
        return
    original_fetch = fetch.BotoFetcher.fetch
    original_get_path = s3.get_path
    original_verify = fetch.verify_sha1

    @functools.wraps(original_fetch)
    def guarded_fetch(self):
        if not os.path.exists(self.output_filename):
            host = f"https://{self.bucketname}.s3.amazonaws.com"
            if not network_available(host):
                version = (self.extra_args or {}).get("VersionId")
                address = s3_address(self.bucketname, self.relative_path, version)
                identifier = _fetching.get() or os.path.basename(self.relative_path)
                raise MissingFileError(
                    f"BrainIO data {identifier!r} (file {os.path.basename(self.output_filename)}, "
                    f"sha1 {self.local_filename})",
                    self.output_filename,
                    BRAINIO_HOME_ENV,
                    hint=f"Download it from {address} (see docs/brainscore_data.md)",
                    offline=True,
                )
        return original_fetch(self)

    @functools.wraps(original_get_path)
    def get_path_naming_identifier(identifier, *args, **kwargs):
        token = _fetching.set(identifier)
        try:
            return original_get_path(identifier, *args, **kwargs)
        finally:
            _fetching.reset(token)

    @functools.wraps(original_verify)
    def verify_naming_file(file_path, expected_sha1):
        try:
            original_verify(file_path, expected_sha1)
        except ValueError as err:
            identifier = _fetching.get() or os.path.basename(str(file_path))
            raise ConfigError(
                f"corrupt BrainIO data {identifier!r} at {file_path} ({err}); replace it with the original file "
                f"or remove it to download it again (`{BRAINIO_HOME_ENV}`, see docs/brainscore_data.md)"
            ) from None

    setattr(guarded_fetch, _GUARD, True)
    fetch.BotoFetcher.fetch = guarded_fetch
    s3.get_path = get_path_naming_identifier
    fetch.verify_sha1 = verify_naming_file
    s3.verify_sha1 = verify_naming_file

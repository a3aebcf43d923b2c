"""Profiles changed without a redeploy: read from SSM Parameter Store or an S3 object (``PROFILES_SOURCE``).

``ProfileSource.current()`` is asked at the start of every run (``Runtime.refresh_profiles`` from the handler): the
document is read with Powertools Parameters and cached ``max_age`` seconds, so a change is picked up within that
time at one read per container per ``max_age``. Each new version is validated as the layer's file is (every
profile against the API's rules, and against the results prefix) before it is used:

- valid: it replaces the profiles of this container (logged once);
- invalid, or unreadable: the last good version stays in use, and every run says so with ``ProfilesInvalid``
  (Count 1) and an error log naming the problem, which the ``ProfilesInvalidAlarm`` watches;
- invalid at a cold start, with no good version yet: the run fails with the ``ConfigurationError`` (as a bad
  profile in the layer's file fails it), rather than analysing videos with profiles nobody chose; the messages of
  the ingest queue retry and then wait in its dead-letter queue for ``videobatch redrive`` after the fix.

Sources: ``ssm:/name`` (a String parameter: standard tier holds 4 KB, advanced 8 KB) or ``s3://bucket/key``
(no size limit). Empty: the layer's ``profiles.json`` and no reads at all.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.base import BaseProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from videobatch.domain.profiles import ProfileSet, load_profiles
from videobatch.errors import ConfigurationError

if TYPE_CHECKING:
    from videobatch.services.ports import MetricsSink

logger = logging.getLogger(__name__)

PROFILES_INVALID: Final = "ProfilesInvalid"


class S3ObjectProvider(BaseProvider):
    """A Powertools Parameters provider for one S3 object per name (``bucket/key``), with its caching."""

    def __init__(self, client: Any) -> None:
        super().__init__(client=client)  # type: ignore[no-untyped-call]
        self._client = client

    def _get(self, name: str, **sdk_options: Any) -> str:
        bucket, _, key = name.partition("/")
        body: bytes = self._client.get_object(Bucket=bucket, Key=key, **sdk_options)["Body"].read()
        return body.decode("utf-8")

    def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:
        raise NotImplementedError("profiles are one object")


def provider_for(source: str, session: Any) -> tuple[BaseProvider, str]:
    """(Powertools provider, name) for ``ssm:/name`` or ``s3://bucket/key``."""
    if source.startswith("ssm:"):
        return SSMProvider(boto3_client=session.client("ssm")), source.removeprefix("ssm:")
    if source.startswith("s3://"):
        return S3ObjectProvider(session.client("s3")), source.removeprefix("s3://")
    raise ConfigurationError(f"PROFILES_SOURCE {source!r} is neither ssm:/<parameter> nor s3://<bucket>/<key>")


class ProfileSource:
    def __init__(self, provider: BaseProvider, name: str, *, max_age_seconds: float, results_prefix: str) -> None:
        self._provider = provider
        self._name = name
        self._max_age = int(max_age_seconds)
        self._results_prefix = results_prefix
        self._good: ProfileSet | None = None
        self._good_text: str | None = None
        self._bad_text: str | None = None
        self.problem: str | None = None  # why the newest version is not in use (None: it is)

    @property
    def description(self) -> str:
        return f"{type(self._provider).__name__}:{self._name}"

    def current(self, metrics: MetricsSink) -> ProfileSet:
        """The profiles to use now (see the module's rules)."""
        try:
            text = self._read()
        except (GetParameterError, UnicodeDecodeError) as error:
            return self._keep(f"profiles source {self._name} unreadable: {error}", metrics)
        if text == self._good_text and self._good is not None:
            self.problem = None
            return self._good
        if text == self._bad_text:
            return self._keep(self.problem or "invalid", metrics)
        try:
            profiles = load_profiles(text)
            profiles.check_results_prefix(self._results_prefix)
        except (ConfigurationError, ValueError) as error:
            self._bad_text = text
            return self._keep(f"profiles source {self._name} holds an invalid version: {error}", metrics)
        first = self._good is None
        self._good, self._good_text, self._bad_text, self.problem = profiles, text, None, None
        logger.info(
            "profiles loaded" if first else "profiles updated",
            extra={"source": self._name, "profiles": [profile.name for profile in profiles.profiles]},
        )
        return profiles

    def _read(self) -> str:
        value = self._provider.get(self._name, max_age=self._max_age)
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if not isinstance(value, str):
            raise GetParameterError(f"expected text, got {type(value).__name__}")
        return value

    def _keep(self, problem: str, metrics: MetricsSink) -> ProfileSet:
        self.problem = problem
        metrics.add_metric(name=PROFILES_INVALID, unit="Count", value=1)
        if self._good is None:
            raise ConfigurationError(f"{problem}; no valid version has been loaded yet, so nothing runs")
        logger.error("profiles not updated; the last good version stays in use", extra={"problem": problem})
        return self._good


def profile_source(source: str, session: Any, *, max_age_seconds: float, results_prefix: str) -> ProfileSource:
    provider, name = provider_for(source, session)
    return ProfileSource(provider, name, max_age_seconds=max_age_seconds, results_prefix=results_prefix)

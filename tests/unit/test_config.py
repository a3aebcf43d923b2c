import pytest

from videobatch.config import Settings
from videobatch.errors import ConfigurationError

BASE = {
    "TABLE_NAME": "items",
    "EVENT_BUS_NAME": "bus",
    "VIDEO_BUCKET": "uploads",
    "TWELVELABS_API_KEY_SECRET": "tl-key",
}


def test_reads_upper_case_environment() -> None:
    settings = Settings.from_env({**BASE, "MAX_WAIT_SECONDS": "60", "CONTENT_COUNTING": "windows"})
    assert settings.table_name == "items"
    assert settings.max_wait_seconds == 60.0
    assert settings.content_counting == "windows"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"MAX_ACTIVE_BATCHES": "6"}, "MAX_ACTIVE_BATCHES"),
        ({"MAX_ITEMS_PER_BATCH": "1001"}, "MAX_ITEMS_PER_BATCH"),
        ({"MAX_WAIT_SECONDS": "soon"}, "MAX_WAIT_SECONDS"),
    ],
)
def test_invalid_values_name_the_variable(extra: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env({**BASE, **extra})


def test_missing_required_variable_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="TABLE_NAME"):
        Settings.from_env({"EVENT_BUS_NAME": "bus", "TWELVELABS_API_KEY_SECRET": "k"})

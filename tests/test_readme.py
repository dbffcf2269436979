"""Issue 15 item 10: the README states each setting's default once, and it is the code's."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_run_history_days_default_is_the_settings_one():
    from quant_resources.settings import PlatformSettings

    default = PlatformSettings.model_fields["run_history_days"].default
    text = README.read_text()
    table = re.findall(r"^\| `RUN_HISTORY_DAYS` \| `(\d+)` \|", text, flags=re.MULTILINE)
    prose = re.findall(r"`RUN_HISTORY_DAYS` \(default (\d+)\)", text)
    assert table and prose
    assert {int(v) for v in table + prose} == {default}

"""One process per campaign: the lock is held, named, shared by every path to it, and dies with its process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mailcast.errors import CampaignBusyError, ExitCode
from mailcast.lock import CampaignLock


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    with CampaignLock(tmp_path, "news"):
        other = CampaignLock(tmp_path, "news")
        assert other.held_elsewhere()
        with pytest.raises(CampaignBusyError) as caught:
            other.acquire()
        assert caught.value.exit_code == ExitCode.TEMPFAIL
        assert str(os.getpid()) in caught.value.message
        with CampaignLock(tmp_path, "another campaign"):  # other campaigns are free
            pass
    assert not CampaignLock(tmp_path, "news").held_elsewhere()
    with CampaignLock(tmp_path, "news"):  # released: it can be taken again
        pass


def test_the_lock_dies_with_its_process_even_kill_9(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from mailcast.lock import CampaignLock\n"
            f"CampaignLock(Path({str(tmp_path)!r}), 'news').acquire(); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    assert CampaignLock(tmp_path, "news").held_elsewhere()
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    assert not CampaignLock(tmp_path, "news").held_elsewhere()
    with CampaignLock(tmp_path, "news"):
        pass


def test_a_folder_that_cannot_be_written_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    from mailcast.errors import StateError

    with pytest.raises(StateError, match="cannot create the lock file"):
        CampaignLock(blocker / "locks", "news").acquire()

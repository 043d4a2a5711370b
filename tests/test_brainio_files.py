"""The nine BrainIO files: the table matches brainscore-vision's data plugins; the guard on brainscore-core's S3 access."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from callbacks.brainscore.brainio_data import (
    BRAINIO_FILES,
    PUBLIC_BENCHMARKS,
    brainio_files_markdown,
    files_for,
    import_brainscore_vision,
    missing_brainio_files,
)
from callbacks.brainscore.commands.brainio_files import brainio_files_command
from neuroalign.core.errors import ConfigError, MissingFileError


class _Recorded(Exception):
    pass


def test_table_matches_installed_brainscore_vision(monkeypatch):
    """Record what brainscore-vision itself would fetch for each public dataset and compare with the table."""
    brainscore_vision = import_brainscore_vision()
    from brainscore_core.supported_data_standards.brainio import s3

    fetched: list[tuple[str, str, str]] = []

    def fake_fetch(location_type, location, sha1=None, version_id=None):
        fetched.append((location, sha1, version_id))
        return f"/nonexistent/{sha1}/{Path(location).name}"

    def stop(_zip_path):  # the stimulus zip would be unpacked next: everything is recorded by now
        raise _Recorded

    monkeypatch.setattr(s3, "fetch_file", fake_fetch)  # below the guard's get_path, which calls s3.fetch_file
    monkeypatch.setattr(s3, "unzip", stop)
    for group, files in BRAINIO_FILES.items():
        fetched.clear()
        with pytest.raises(_Recorded):
            brainscore_vision.load_dataset(group)
        expected = [(f.url.split("?")[0], f.sha1, f.version_id) for f in files]
        assert fetched == expected, group


def test_nine_files_for_five_benchmarks():
    files = files_for(PUBLIC_BENCHMARKS)
    assert len(PUBLIC_BENCHMARKS) == 5
    assert len(files) == 9 and len({f.sha1 for f in files}) == 9
    assert len(files_for(["FreemanZiemba2013public.V1-pls", "FreemanZiemba2013public.V2-pls"])) == 3


def test_cache_path_layout(tmp_path):
    file = files_for("MajajHong2015public.IT-pls")[0]
    assert file.path(tmp_path) == tmp_path / file.sha1 / file.filename


def test_unknown_benchmark_lists_the_public_ones():
    with pytest.raises(ConfigError, match="MajajHong2015public.IT-pls"):
        files_for("MajajHong2015public.IT-pl")


def test_guard_fails_fast_offline_in_one_line(tmp_path, monkeypatch):
    """brainscore-core's own loader, with the guard: identifier, expected path, sha1 and address in one line."""
    monkeypatch.setenv("NEUROALIGN_OFFLINE", "1")
    monkeypatch.setenv("BRAINIO_HOME", str(tmp_path))
    brainscore_vision = import_brainscore_vision()
    start = time.monotonic()
    with pytest.raises(MissingFileError) as info:
        brainscore_vision.load_dataset("Rajalingham2018.public")
    assert time.monotonic() - start < 15
    message = str(info.value)
    assembly = files_for("Rajalingham2018public-i2n")[0]  # the assembly file is fetched first
    assert "\n" not in message and "BRAINIO_HOME" in message and "'dicarlo.Rajalingham2018.public'" in message
    assert str(assembly.path(tmp_path)) in message and assembly.sha1 in message and assembly.url in message


def test_present_files_are_used_without_network(tmp_path, monkeypatch):
    """A cached file goes on to brainscore-core's sha1 check (no network needed, no download tried)."""
    monkeypatch.setenv("NEUROALIGN_OFFLINE", "1")
    monkeypatch.setenv("BRAINIO_HOME", str(tmp_path))
    brainscore_vision = import_brainscore_vision()
    for file in files_for("Rajalingham2018public-i2n"):
        file.path(tmp_path).parent.mkdir(parents=True)
        file.path(tmp_path).write_bytes(b"x")
    with pytest.raises(ConfigError, match="corrupt BrainIO data 'dicarlo.Rajalingham2018.public'"):
        brainscore_vision.load_dataset("Rajalingham2018.public")
    assert [f.sha1 for f in missing_brainio_files("Rajalingham2018public-i2n", tmp_path, verify=True)] == [
        f.sha1 for f in files_for("Rajalingham2018public-i2n")
    ]
    assert missing_brainio_files("Rajalingham2018public-i2n", tmp_path) == []


def test_markdown_table_and_docs_in_sync(tmp_path):
    table = brainio_files_markdown()
    rows = [line for line in table.splitlines()[2:]]
    assert len(rows) == 9
    for file in files_for(PUBLIC_BENCHMARKS):
        assert file.sha1 in table and file.filename in table
    docs = Path(__file__).resolve().parents[1] / "docs" / "brainscore_data.md"
    assert table in docs.read_text()
    assert str(tmp_path) in brainio_files_markdown(home=tmp_path)


def test_status_command(tmp_path):
    file = files_for("Rajalingham2018public-i2n")[0]
    file.path(tmp_path).parent.mkdir(parents=True)
    file.path(tmp_path).write_bytes(b"x")
    lines = brainio_files_command(["Rajalingham2018public-i2n"], home=str(tmp_path)).splitlines()[1:]
    assert [line.split()[0] for line in lines] == ["ok", "MISSING", "MISSING"]
